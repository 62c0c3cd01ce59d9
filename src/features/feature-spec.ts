/**
 * The ordered, versioned feature list. Its order is the column order of the model's input tensor
 * and of the training matrix; it is written into every model's metadata, and the server refuses a
 * model whose list differs. Change a name, an order or a definition: bump the version.
 */
export const kFeatureSetVersion = 'bars-v1'

export const kFeatureNames = [
  // multi-horizon log returns of the close, ending at the current bar
  'ret_1', 'ret_3', 'ret_5', 'ret_15', 'ret_60',
  // realized volatility: std of 1-bar log returns over the last 15 / 60 bars, and their ratio
  'vol_15', 'vol_60', 'vol_ratio_15_60',
  // Wilder's RSI over 14 bars (0..100); close relative to its 30-bar mean
  'rsi_14', 'ma_gap_30',
  // candle shape, relative to the open; close position inside the bar's range (0 = low, 1 = high)
  'range_pct', 'body_pct', 'upper_wick_pct', 'lower_wick_pct', 'close_pos',
  // volume z-score against the previous 30 bars; 5-bar over 30-bar mean volume
  'volume_z_30', 'volume_ratio_5_30',
  // order book: volume and top-5 depth imbalance in [-1, 1], spread and price-to-mid gap in bps
  'book_imbalance', 'depth5_imbalance', 'spread_bps', 'micro_gap_bps',
  // BTC co-movement: BTC returns, 60-bar correlation and beta of 1-bar returns, residual and relative strength
  'btc_ret_1', 'btc_ret_5', 'btc_ret_15', 'btc_corr_60', 'btc_beta_60', 'resid_ret_1', 'rel_strength_15',
  // perpetual funding rate as sent
  'funding_rate',
  // time of day (UTC) of the bar, on the unit circle
  'tod_sin', 'tod_cos',
] as const

export const kFeatureCount = kFeatureNames.length

