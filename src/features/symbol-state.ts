import { kFeatureCount } from './feature-spec.js'
import type { MarketSnapshot } from './market-snapshot.js'
import { RecentValues, RollingPairStats, RollingStats, varianceFromSums } from './rolling-window.js'
import type { BarTrack } from '../monitoring/bar-track.js'

/**
 * Rolling indicators for one symbol, over time bars of `barMs`.
 *
 * A request falls into the bar `floor(timestampMs / barMs)`. Requests inside the current bar update
 * it (close = latest price, high/low widen, the candle's own open/high/low/volume win when sent);
 * they add no history. When a request opens a later bar, the current bar is finalized into the
 * windows below in O(1); a jump of more than `maxGapBars` bars resets the history, exactly as the
 * training replay does at gaps in the candles, so serving and training see the same features.
 *
 * Features are always "history of finalized bars + the current bar as it stands", so the
 * windows hold N-1 finalized bars and the current bar is folded in at compute time without being
 * committed. `test/features/symbol-state.test.ts` checks every feature against a from-scratch
 * recomputation over the same bars.
 */

export const kApplyOk = 0
/** The request's timestamp_ms falls in a bar older than the symbol's current bar; nothing was changed. Never for a request without timestamp_ms. */
export const kApplyStale = 1
export type ApplyStatus = typeof kApplyOk | typeof kApplyStale

const kDayMs = 86_400_000
const kTwoPi = 2 * Math.PI

/** Window lengths, in bars, including the current one. */
const kRetHorizons = [1, 3, 5, 15, 60] as const
const kVolShort = 15
const kVolLong = 60
const kRsiPeriod = 14
const kMaWindow = 30
const kVolumeZWindow = 30
const kVolumeShort = 5
const kVolumeLong = 30
const kBtcWindow = 60

/** Scalars at the start of a saved state: the open bar, the history counters, RSI. */
const kScalarSlots = 15

function minSamples (window: number): number { return Math.ceil(window / 2) }

export class SymbolState {
  readonly barMs: number
  readonly maxGapBars: number

  /** Bar index of the current (open) bar; -1 before the first request. */
  barIndex = -1
  open = Number.NaN
  high = Number.NaN
  low = Number.NaN
  close = Number.NaN
  volume = Number.NaN
  btc = Number.NaN
  /** The monitor's record of this symbol's requests and predictions (monitoring/); not saved. */
  track: BarTrack | null = null

  /** Finalized bars since the last reset. */
  private finalized = 0
  private lastClose = Number.NaN
  private lastBtc = Number.NaN
  private readonly closes = new RecentValues(60)
  private readonly btcCloses = new RecentValues(60)
  private readonly retShort = new RollingStats(kVolShort - 1)
  private readonly retLong = new RollingStats(kVolLong - 1)
  private readonly closeMa = new RollingStats(kMaWindow - 1)
  private readonly volumePrev = new RollingStats(kVolumeZWindow)
  private readonly volumeShort = new RollingStats(kVolumeShort - 1)
  private readonly volumeLong = new RollingStats(kVolumeLong - 1)
  private readonly retPair = new RollingPairStats(kBtcWindow - 1)
  /** Wilder RSI: changes seen, seed sums, then smoothed averages. */
  private rsiChanges = 0
  private rsiGainSum = 0
  private rsiLossSum = 0
  private rsiAvgGain = Number.NaN
  private rsiAvgLoss = Number.NaN

  constructor (barMs: number, maxGapBars: number) {
    this.barMs = barMs
    this.maxGapBars = maxGapBars
  }

  /**
   * Float64 slots of `saveTo`: the same for every symbol of a build (the window lengths are
   * constants), so the state file holds fixed-size records and checks this length on load.
   */
  get stateLength (): number {
    return kScalarSlots + this.closes.stateLength + this.btcCloses.stateLength +
      this.retShort.stateLength + this.retLong.stateLength + this.closeMa.stateLength +
      this.volumePrev.stateLength + this.volumeShort.stateLength + this.volumeLong.stateLength +
      this.retPair.stateLength
  }

  /**
   * Writes the whole state, bit for bit, into `out[at .. at + stateLength)`; for the state file,
   * never on the request path. Counters are small integers, exact as float64.
   */
  saveTo (out: Float64Array, at: number): void {
    out[at] = this.barIndex
    out[at + 1] = this.open
    out[at + 2] = this.high
    out[at + 3] = this.low
    out[at + 4] = this.close
    out[at + 5] = this.volume
    out[at + 6] = this.btc
    out[at + 7] = this.finalized
    out[at + 8] = this.lastClose
    out[at + 9] = this.lastBtc
    out[at + 10] = this.rsiChanges
    out[at + 11] = this.rsiGainSum
    out[at + 12] = this.rsiLossSum
    out[at + 13] = this.rsiAvgGain
    out[at + 14] = this.rsiAvgLoss
    let i = at + kScalarSlots
    i = this.closes.saveTo(out, i)
    i = this.btcCloses.saveTo(out, i)
    i = this.retShort.saveTo(out, i)
    i = this.retLong.saveTo(out, i)
    i = this.closeMa.saveTo(out, i)
    i = this.volumePrev.saveTo(out, i)
    i = this.volumeShort.saveTo(out, i)
    i = this.volumeLong.saveTo(out, i)
    this.retPair.saveTo(out, i)
  }

  /**
   * Inverse of `saveTo` on a fresh state. False when the slots cannot be a state (a counter that is
   * not a whole number, a ring index out of range): the caller then refuses the whole file, since
   * its checksum held and the writer must have been another build.
   */
  restoreFrom (src: Float64Array, at: number): boolean {
    const barIndex = src[at]!
    const finalized = src[at + 7]!
    const rsiChanges = src[at + 10]!
    if (!Number.isInteger(barIndex) || barIndex < -1) return false
    if (!Number.isInteger(finalized) || finalized < 0) return false
    if (!Number.isInteger(rsiChanges) || rsiChanges < 0) return false
    let i = at + kScalarSlots
    for (const w of [this.closes, this.btcCloses, this.retShort, this.retLong, this.closeMa,
      this.volumePrev, this.volumeShort, this.volumeLong, this.retPair]) {
      if (!w.restoreFrom(src, i)) return false
      i += w.stateLength
    }
    this.barIndex = barIndex
    this.open = src[at + 1]!
    this.high = src[at + 2]!
    this.low = src[at + 3]!
    this.close = src[at + 4]!
    this.volume = src[at + 5]!
    this.btc = src[at + 6]!
    this.finalized = finalized
    this.lastClose = src[at + 8]!
    this.lastBtc = src[at + 9]!
    this.rsiChanges = rsiChanges
    this.rsiGainSum = src[at + 11]!
    this.rsiLossSum = src[at + 12]!
    this.rsiAvgGain = src[at + 13]!
    this.rsiAvgLoss = src[at + 14]!
    return true
  }

  /** Most closes `recentCloses` can return: the finalized history (60) plus the current bar. */
  static readonly kMaxRecentCloses = 61

  /**
   * Read-only: the last `closes.length` closes of this symbol, oldest first, the current bar's
   * close (as it stands) last; the same for BTC into `btc` when given (same length). Slots older
   * than the history since the last reset are NaN. Returns how many of the closes are real (0
   * before the first request). For windowed inputs (src/features/window-input.ts); the same
   * "finalized bars + current bar" view the features use, so a row and its window agree.
   */
  recentCloses (closes: Float64Array, btc: Float64Array | null): number {
    const n = closes.length
    if (n > SymbolState.kMaxRecentCloses) throw new RangeError(`recentCloses: at most ${SymbolState.kMaxRecentCloses} closes are kept, asked for ${n}`)
    if (btc !== null && btc.length !== n) throw new RangeError(`recentCloses: btc holds ${btc.length} slots, closes ${n}`)
    if (n === 0) return 0
    return this.copyCloses(closes, 0, btc, 0, n)
  }

  /**
   * The serving form of `recentCloses`: writes the window block of a batch row
   * (features/row-layout.ts) at `out[at]`: the count of real closes, then `n` closes and `n` BTC
   * closes, with no view or array made per request.
   */
  writeWindow (out: Float64Array, at: number, n: number): void {
    out[at] = this.copyCloses(out, at + 1, out, at + 1 + n, n)
  }

  /** `n` closes at `closes[closesAt..)` and BTC's at `btc[btcAt..)` (none when null); n >= 1. */
  private copyCloses (closes: Float64Array, closesAt: number, btc: Float64Array | null, btcAt: number, n: number): number {
    if (this.barIndex < 0) {
      closes.fill(Number.NaN, closesAt, closesAt + n)
      if (btc !== null) btc.fill(Number.NaN, btcAt, btcAt + n)
      return 0
    }
    closes[closesAt + n - 1] = this.close
    if (btc !== null) btc[btcAt + n - 1] = this.btc
    // ago(k) is NaN past the history, which is exactly the "missing" marker wanted here
    for (let k = 1; k < n; k++) {
      closes[closesAt + n - 1 - k] = this.closes.ago(k)
      if (btc !== null) btc[btcAt + n - 1 - k] = this.btcCloses.ago(k)
    }
    return Math.min(n, this.closes.size + 1)
  }

  /**
   * Bar index a snapshot falls into: its timestamp's, or for a snapshot without one its arrival
   * time's, but never older than the current bar. The current bar can start up to
   * max_clock_skew_ms after the server's clock (a client clock running ahead, or this clock
   * stepped back); a request that names no time has no time of its own to be stale about, so it
   * joins the current bar instead of being refused for a field it never sent.
   */
  barOf (snapshot: MarketSnapshot, arrivalMs: number): number {
    if (snapshot.timestampMs === snapshot.timestampMs) return Math.floor(snapshot.timestampMs / this.barMs)
    const bar = Math.floor(arrivalMs / this.barMs)
    return bar < this.barIndex ? this.barIndex : bar
  }

  /**
   * Folds one validated snapshot into the state and writes the feature row into
   * `out[offset .. offset + kFeatureCount)`. A stale snapshot changes nothing and writes nothing.
   */
  apply (snapshot: MarketSnapshot, arrivalMs: number, out: Float32Array | Float64Array, offset: number): ApplyStatus {
    const bar = this.barOf(snapshot, arrivalMs)
    if (bar < this.barIndex) return kApplyStale
    if (bar > this.barIndex) {
      if (this.barIndex >= 0) {
        this.finalizeBar()
        if (bar - this.barIndex > this.maxGapBars) this.resetHistory()
      }
      this.openBar(bar, snapshot)
    } else {
      this.updateBar(snapshot)
    }
    this.writeFeatures(snapshot, out, offset)
    return kApplyOk
  }

  /**
   * The feature row of the current bar as it stands, for a request with `s`'s order-book and
   * funding fields and price = the bar's close: the row the bar's latest request got (monitor).
   */
  featuresNow (s: MarketSnapshot, out: Float32Array | Float64Array, offset: number): void {
    this.writeFeatures(s, out, offset)
  }

  private openBar (bar: number, s: MarketSnapshot): void {
    const price = s.price
    this.barIndex = bar
    this.open = s.open === s.open ? s.open : price
    this.high = Math.max(price, this.open, s.high === s.high ? s.high : price)
    this.low = Math.min(price, this.open, s.low === s.low ? s.low : price)
    this.close = price
    this.volume = s.volume
    this.btc = s.btcPrice
  }

  private updateBar (s: MarketSnapshot): void {
    const price = s.price
    if (s.open === s.open) this.open = s.open
    // The bar's range covers every price seen, the candle's own high/low when sent, and its open.
    let high = this.high > price ? this.high : price
    if (s.high === s.high && s.high > high) high = s.high
    if (this.open > high) high = this.open
    let low = this.low < price ? this.low : price
    if (s.low === s.low && s.low < low) low = s.low
    if (this.open < low) low = this.open
    this.high = high
    this.low = low
    this.close = price
    if (s.volume === s.volume) this.volume = s.volume
    if (s.btcPrice === s.btcPrice) this.btc = s.btcPrice
  }

  private finalizeBar (): void {
    const ret = this.finalized > 0 ? Math.log(this.close / this.lastClose) : Number.NaN
    const btcRet = Math.log(this.btc / this.lastBtc) // NaN when either is missing
    if (this.finalized > 0) {
      this.retShort.push(ret)
      this.retLong.push(ret)
      this.retPair.push(ret, btcRet)
      this.advanceRsi(this.close - this.lastClose)
    }
    this.closes.push(this.close)
    this.btcCloses.push(this.btc)
    this.closeMa.push(this.close)
    this.volumePrev.push(this.volume)
    this.volumeShort.push(this.volume)
    this.volumeLong.push(this.volume)
    this.lastClose = this.close
    this.lastBtc = this.btc
    this.finalized++
  }

  private advanceRsi (change: number): void {
    const gain = change > 0 ? change : 0
    const loss = change < 0 ? -change : 0
    this.rsiChanges++
    if (this.rsiChanges < kRsiPeriod) {
      this.rsiGainSum += gain
      this.rsiLossSum += loss
    } else if (this.rsiChanges === kRsiPeriod) {
      this.rsiAvgGain = (this.rsiGainSum + gain) / kRsiPeriod
      this.rsiAvgLoss = (this.rsiLossSum + loss) / kRsiPeriod
    } else {
      this.rsiAvgGain = (this.rsiAvgGain * (kRsiPeriod - 1) + gain) / kRsiPeriod
      this.rsiAvgLoss = (this.rsiAvgLoss * (kRsiPeriod - 1) + loss) / kRsiPeriod
    }
  }

  private resetHistory (): void {
    this.finalized = 0
    this.lastClose = Number.NaN
    this.lastBtc = Number.NaN
    this.closes.clear()
    this.btcCloses.clear()
    this.retShort.clear()
    this.retLong.clear()
    this.closeMa.clear()
    this.volumePrev.clear()
    this.volumeShort.clear()
    this.volumeLong.clear()
    this.retPair.clear()
    this.rsiChanges = 0
    this.rsiGainSum = 0
    this.rsiLossSum = 0
    this.rsiAvgGain = Number.NaN
    this.rsiAvgLoss = Number.NaN
  }

  /** RSI with the current bar's change folded in, without committing it. */
  private currentRsi (): number {
    if (this.finalized === 0) return Number.NaN
    const change = this.close - this.lastClose
    const gain = change > 0 ? change : 0
    const loss = change < 0 ? -change : 0
    const n = this.rsiChanges + 1
    let avgGain: number
    let avgLoss: number
    if (n < kRsiPeriod) return Number.NaN
    if (n === kRsiPeriod) {
      avgGain = (this.rsiGainSum + gain) / kRsiPeriod
      avgLoss = (this.rsiLossSum + loss) / kRsiPeriod
    } else {
      avgGain = (this.rsiAvgGain * (kRsiPeriod - 1) + gain) / kRsiPeriod
      avgLoss = (this.rsiAvgLoss * (kRsiPeriod - 1) + loss) / kRsiPeriod
    }
    const total = avgGain + avgLoss
    return total > 0 ? (100 * avgGain) / total : 50
  }

  private writeFeatures (s: MarketSnapshot, out: Float32Array | Float64Array, offset: number): void {
    const close = this.close
    const open = this.open
    const high = this.high
    const low = this.low
    let i = offset

    // Returns over 1, 3, 5, 15, 60 bars: log(close / close k bars ago).
    const ret1 = Math.log(close / this.closes.ago(1))
    for (let h = 0; h < kRetHorizons.length; h++) {
      out[i++] = Math.log(close / this.closes.ago(kRetHorizons[h]!))
    }

    // Realized volatility, current return folded in.
    const volShort = stdWithCurrent(this.retShort, ret1, minSamples(kVolShort))
    const volLong = stdWithCurrent(this.retLong, ret1, minSamples(kVolLong))
    out[i++] = volShort
    out[i++] = volLong
    out[i++] = volLong > 0 ? volShort / volLong : Number.NaN

    out[i++] = this.currentRsi()
    const ma = meanWithCurrent(this.closeMa, close, minSamples(kMaWindow))
    out[i++] = close / ma - 1

    // Candle shape relative to the open.
    const range = high - low
    out[i++] = range / open
    out[i++] = (close - open) / open
    out[i++] = (high - Math.max(open, close)) / open
    out[i++] = (Math.min(open, close) - low) / open
    out[i++] = range > 0 ? (close - low) / range : 0.5

    // Volume against the previous bars.
    const vol = this.volume
    const vp = this.volumePrev
    const vMean = vp.count >= minSamples(kVolumeZWindow) ? vp.sum / vp.count : Number.NaN
    const vStd = Math.sqrt(varianceFromSums(vp.sum, vp.sumSq, vp.count, minSamples(kVolumeZWindow)))
    out[i++] = vStd > 0 ? (vol - vMean) / vStd : Number.NaN
    const vShort = meanWithCurrent(this.volumeShort, vol, minSamples(kVolumeShort))
    const vLong = meanWithCurrent(this.volumeLong, vol, minSamples(kVolumeLong))
    out[i++] = vLong > 0 ? vShort / vLong : Number.NaN

    // Order book, instantaneous: taken from this request only.
    out[i++] = imbalance(s.bidVolume, s.askVolume)
    out[i++] = imbalance(s.bidDepth5, s.askDepth5)
    const mid = (s.bestBid + s.bestAsk) / 2
    out[i++] = mid > 0 ? ((s.bestAsk - s.bestBid) / mid) * 1e4 : Number.NaN
    out[i++] = mid > 0 ? ((s.price - mid) / mid) * 1e4 : Number.NaN

    // BTC co-movement.
    const btc = this.btc
    const btcRet1 = Math.log(btc / this.btcCloses.ago(1))
    out[i++] = btcRet1
    out[i++] = Math.log(btc / this.btcCloses.ago(5))
    const btcRet15 = Math.log(btc / this.btcCloses.ago(15))
    out[i++] = btcRet15
    const p = this.retPair
    let n = p.count
    let sx = p.sx; let sy = p.sy; let sxx = p.sxx; let syy = p.syy; let sxy = p.sxy
    if (ret1 === ret1 && btcRet1 === btcRet1) {
      n++; sx += ret1; sy += btcRet1; sxx += ret1 * ret1; syy += btcRet1 * btcRet1; sxy += ret1 * btcRet1
    }
    let corr = Number.NaN
    let beta = Number.NaN
    if (n >= minSamples(kBtcWindow)) {
      const cov = (sxy - (sx * sy) / n) / (n - 1)
      const varX = (sxx - (sx * sx) / n) / (n - 1)
      const varY = (syy - (sy * sy) / n) / (n - 1)
      if (varX > 0 && varY > 0) corr = cov / Math.sqrt(varX * varY)
      if (varY > 0) beta = cov / varY
    }
    out[i++] = corr
    out[i++] = beta
    out[i++] = ret1 - beta * btcRet1
    out[i++] = Math.log(close / this.closes.ago(15)) - btcRet15

    out[i++] = s.fundingRate

    const dayFraction = (((this.barIndex * this.barMs) % kDayMs) + kDayMs) % kDayMs / kDayMs
    out[i++] = Math.sin(kTwoPi * dayFraction)
    out[i++] = Math.cos(kTwoPi * dayFraction)

    if (i - offset !== kFeatureCount) throw new Error(`feature writer wrote ${i - offset} of ${kFeatureCount} features`)
  }
}

function meanWithCurrent (w: RollingStats, current: number, minCount: number): number {
  let sum = w.sum
  let count = w.count
  if (current === current) { sum += current; count++ }
  return count >= minCount ? sum / count : Number.NaN
}

function stdWithCurrent (w: RollingStats, current: number, minCount: number): number {
  let sum = w.sum
  let sumSq = w.sumSq
  let count = w.count
  if (current === current) { sum += current; sumSq += current * current; count++ }
  return Math.sqrt(varianceFromSums(sum, sumSq, count, minCount))
}

function imbalance (bid: number, ask: number): number {
  const total = bid + ask
  return total > 0 ? (bid - ask) / total : Number.NaN
}
