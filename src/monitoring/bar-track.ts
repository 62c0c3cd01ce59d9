import { kFeatureCount } from '../features/feature-spec.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'

/**
 * Numbers of one captured bar, in capture-file column order (capture-file.ts): the candle as
 * served, BTC, the order book and funding as last seen in the bar, then the feature row.
 */
export const kCandleSlots = 6 // open_time_ms, open, high, low, close, volume
export const kBtcSlot = 6
export const kBookSlot = 7 // bid_volume, ask_volume, best_bid, best_ask, bid_depth5, ask_depth5
export const kFundingSlot = 13
export const kFeatureSlot = 14
export const kBarSlots = kFeatureSlot + kFeatureCount

/** Index of each model in a track's probability slots. */
export const kServing = 0
export const kShadow = 1

/**
 * What the monitor keeps about one symbol beside its feature state (SymbolState.track): the last
 * request's order-book and funding inputs (the features need them and the state does not keep
 * them), and the prediction of the current bar and of the closed bar still waiting for its label.
 *
 * Which prediction counts for a bar: the one answered for the latest request admitted in that bar
 * (per model; `seq` orders requests). An answer can arrive after its bar closed (the request that
 * opened the next bar came first): it still lands on the closed bar, which is scored one bar later.
 *
 * Hot path: `note` (a few number stores per request) and `record` (per answered request).
 */
export class BarTrack {
  bidVolume = Number.NaN
  askVolume = Number.NaN
  bestBid = Number.NaN
  bestAsk = Number.NaN
  bidDepth5 = Number.NaN
  askDepth5 = Number.NaN
  fundingRate = Number.NaN
  /** Sequence number of the latest admitted request of this symbol. */
  seq = 0

  /** Current bar and, per model, the probability, request seq and version of its latest answer. */
  curBar = -1
  readonly curP = new Float64Array([Number.NaN, Number.NaN])
  readonly curSeq = new Float64Array([-1, -1])
  readonly curVersion: [string, string] = ['', '']

  /** The closed bar waiting for the next bar's close (its label); -1: none. */
  prevBar = -1
  prevClose = Number.NaN
  readonly prevP = new Float64Array([Number.NaN, Number.NaN])
  readonly prevSeq = new Float64Array([-1, -1])
  readonly prevVersion: [string, string] = ['', '']
  /** The closed bar's capture row (kBarSlots numbers), filled when it closed. */
  readonly prevRow = new Float64Array(kBarSlots)

  /** A request of bar `bar` was admitted: keep its inputs, return its sequence number. */
  note (s: MarketSnapshot, bar: number): number {
    this.bidVolume = s.bidVolume
    this.askVolume = s.askVolume
    this.bestBid = s.bestBid
    this.bestAsk = s.bestAsk
    this.bidDepth5 = s.bidDepth5
    this.askDepth5 = s.askDepth5
    this.fundingRate = s.fundingRate
    if (bar !== this.curBar) {
      this.curBar = bar
      this.curP[0] = Number.NaN; this.curP[1] = Number.NaN
      this.curSeq[0] = -1; this.curSeq[1] = -1
    }
    return ++this.seq
  }

  /** Model `which` answered `p` for request `seq` of bar `bar`; the latest request of a bar wins. */
  record (which: number, bar: number, seq: number, p: number, version: string): void {
    if (bar === this.curBar) {
      if (seq < this.curSeq[which]!) return
      this.curSeq[which] = seq
      this.curP[which] = p
      this.curVersion[which] = version
    } else if (bar === this.prevBar) {
      if (seq < this.prevSeq[which]!) return
      this.prevSeq[which] = seq
      this.prevP[which] = p
      this.prevVersion[which] = version
    }
    // Older bars were scored and written already: a later answer has nowhere to go.
  }

  /**
   * The closed bar's prediction by model `which`, NaN if none. The shadow's counts only when it
   * answered the same request as the serving model's: a shadow that lags (or skipped that batch)
   * may have answered only an earlier request of the bar, on another feature row, and comparing
   * candidate and serving is only fair on the same rows.
   */
  prevProbability (which: number): number {
    if (which === kShadow && this.prevSeq[kShadow] !== this.prevSeq[kServing]) return Number.NaN
    return this.prevP[which]!
  }

  /** The current bar closed: its predictions become the closed bar's. */
  shift (bar: number, close: number): void {
    this.prevBar = bar
    this.prevClose = close
    const same = this.curBar === bar
    for (let k = 0; k < 2; k++) {
      this.prevP[k] = same ? this.curP[k]! : Number.NaN
      this.prevSeq[k] = same ? this.curSeq[k]! : -1
      this.prevVersion[k] = same ? this.curVersion[k]! : ''
      this.curP[k] = Number.NaN
      this.curSeq[k] = -1
    }
    this.curBar = -1
  }
}
