/**
 * One request's view of the market, as numbers. Missing inputs are NaN, never 0: the contract says
 * a missing input reaches the model as a missing value.
 *
 * The JSON and FlatBuffers decoders fill one reusable instance per call site (decoding, feature
 * update and row writing all happen synchronously), so the hot path allocates no snapshot objects.
 */
export class MarketSnapshot {
  price = Number.NaN
  open = Number.NaN
  high = Number.NaN
  low = Number.NaN
  volume = Number.NaN
  bidVolume = Number.NaN
  askVolume = Number.NaN
  bestBid = Number.NaN
  bestAsk = Number.NaN
  bidDepth5 = Number.NaN
  askDepth5 = Number.NaN
  btcPrice = Number.NaN
  fundingRate = Number.NaN
  /** Event time in epoch ms; NaN means "use the arrival time". */
  timestampMs = Number.NaN

  reset (): this {
    this.price = Number.NaN
    this.open = Number.NaN
    this.high = Number.NaN
    this.low = Number.NaN
    this.volume = Number.NaN
    this.bidVolume = Number.NaN
    this.askVolume = Number.NaN
    this.bestBid = Number.NaN
    this.bestAsk = Number.NaN
    this.bidDepth5 = Number.NaN
    this.askDepth5 = Number.NaN
    this.btcPrice = Number.NaN
    this.fundingRate = Number.NaN
    this.timestampMs = Number.NaN
    return this
  }
}
