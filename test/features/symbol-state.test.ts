import t from 'tap'
import { kFeatureCount, kFeatureNames } from '../../src/features/feature-spec.js'
import { FeatureStore } from '../../src/features/feature-store.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { kApplyOk, kApplyStale, SymbolState } from '../../src/features/symbol-state.js'
import { prng, referenceFeatures, type RefBar } from '../helpers/reference-features.js'

const kBarMs = 60_000
const kMaxGap = 5

/** Builds bars the way the contract describes them, independently of SymbolState. */
class ReferenceBars {
  bars: RefBar[] = []
  apply (s: MarketSnapshot, bar: number): void {
    const cur = this.bars[this.bars.length - 1]
    const given = (x: number): boolean => !Number.isNaN(x)
    if (cur === undefined || bar > cur.index) {
      if (cur !== undefined && bar - cur.index > kMaxGap) this.bars = []
      const open = given(s.open) ? s.open : s.price
      this.bars.push({
        index: bar, open,
        high: Math.max(s.price, open, given(s.high) ? s.high : s.price),
        low: Math.min(s.price, open, given(s.low) ? s.low : s.price),
        close: s.price, volume: s.volume, btc: s.btcPrice,
      })
    } else {
      if (given(s.open)) cur.open = s.open
      cur.high = Math.max(cur.high, s.price, given(s.high) ? s.high : -Infinity, cur.open)
      cur.low = Math.min(cur.low, s.price, given(s.low) ? s.low : Infinity, cur.open)
      cur.close = s.price
      if (given(s.volume)) cur.volume = s.volume
      if (given(s.btcPrice)) cur.btc = s.btcPrice
    }
  }
}

function close (a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b)
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))
}

t.test('incremental features equal a from-scratch recomputation after every request', async (t) => {
  for (const seed of [1, 2, 3]) {
    const rnd = prng(seed)
    const state = new SymbolState(kBarMs, kMaxGap)
    const ref = new ReferenceBars()
    const s = new MarketSnapshot()
    const row = new Float64Array(kFeatureCount)
    let bar = 28_000_000
    let price = 300
    let btc = 50_000
    let mismatches = 0
    let checked = 0
    for (let i = 0; i < 3000; i++) {
      // Mostly same-bar repeats and next bars; some bridged gaps; rarely a reset-sized jump.
      const u = rnd()
      bar += u < 0.45 ? 0 : u < 0.93 ? 1 : u < 0.99 ? 2 + Math.floor(rnd() * 3) : kMaxGap + 1 + Math.floor(rnd() * 20)
      price *= Math.exp((rnd() - 0.5) * 0.004)
      btc *= Math.exp((rnd() - 0.5) * 0.003)
      // Prices on a coarse tick so that unchanged closes (RSI's zero changes) happen too.
      const p = Math.round(price * 10) / 10
      s.reset()
      s.price = p
      s.timestampMs = bar * kBarMs + Math.floor(rnd() * kBarMs)
      if (rnd() < 0.5) s.open = Math.round(price * (1 + (rnd() - 0.5) * 0.002) * 10) / 10
      if (rnd() < 0.4) s.high = p + Math.round(rnd() * 5) / 10
      if (rnd() < 0.4) s.low = p - Math.round(rnd() * 5) / 10
      if (rnd() < 0.8) s.volume = Math.floor(rnd() * 5000)
      if (rnd() < 0.85) s.btcPrice = Math.round(btc * 100) / 100
      if (rnd() < 0.5) { s.bidVolume = rnd() * 100; s.askVolume = rnd() * 100 }
      if (rnd() < 0.5) { s.bestBid = p - 0.1; s.bestAsk = p + 0.1 }
      if (rnd() < 0.3) { s.bidDepth5 = rnd() * 500; s.askDepth5 = rnd() * 500 }
      if (rnd() < 0.2) s.fundingRate = (rnd() - 0.5) * 1e-3

      if (state.apply(s, 0, row, 0) !== kApplyOk) t.fail(`seed ${seed} request ${i} was refused`)
      ref.apply(s, bar)
      const want = referenceFeatures(ref.bars, s, kBarMs)
      for (let k = 0; k < kFeatureCount; k++) {
        checked++
        if (!close(row[k]!, want[kFeatureNames[k]!]!)) {
          if (mismatches++ < 5) t.fail(`seed ${seed} request ${i}: ${kFeatureNames[k]!} = ${row[k]!}, from scratch ${want[kFeatureNames[k]!]!}`)
        }
      }
    }
    t.equal(mismatches, 0, `seed ${seed}: ${checked} feature values compared, all equal`)
    // The long windows must have been exercised, not left NaN throughout.
    t.ok(!Number.isNaN(row[kFeatureNames.indexOf('vol_60')]!) || ref.bars.length < 30, 'long windows were filled')
  }
})

t.test('repeated requests inside one bar add no history', async (t) => {
  const once = new SymbolState(kBarMs, kMaxGap)
  const repeated = new SymbolState(kBarMs, kMaxGap)
  const s = new MarketSnapshot()
  const a = new Float64Array(kFeatureCount)
  const b = new Float64Array(kFeatureCount)
  for (let bar = 1000; bar < 1100; bar++) {
    const close = 300 + Math.sin(bar) * 3
    // Ten ticks inside the bar, the last one carrying the finished candle.
    for (let k = 0; k < 10; k++) {
      s.reset()
      s.price = close + (k - 5) * 0.01
      s.timestampMs = bar * kBarMs + k * 1000
      if (k === 9) { s.price = close; s.open = close - 0.5; s.high = close + 1; s.low = close - 1; s.volume = 100 + bar % 7; s.btcPrice = 50_000 + bar }
      repeated.apply(s, 0, b, 0)
    }
    s.reset()
    s.price = close; s.open = close - 0.5; s.high = close + 1; s.low = close - 1; s.volume = 100 + bar % 7; s.btcPrice = 50_000 + bar
    s.timestampMs = bar * kBarMs + 59_000
    once.apply(s, 0, a, 0)
  }
  t.same(Array.from(b), Array.from(a), 'features after 10 ticks per bar equal features after one tick per bar')
})

t.test('a request for an older bar is refused and changes nothing', async (t) => {
  const state = new SymbolState(kBarMs, kMaxGap)
  const control = new SymbolState(kBarMs, kMaxGap)
  const s = new MarketSnapshot()
  const a = new Float64Array(kFeatureCount)
  const b = new Float64Array(kFeatureCount)
  for (let bar = 10; bar < 80; bar++) {
    s.reset(); s.price = 100 + bar * 0.1; s.volume = bar; s.timestampMs = bar * kBarMs
    state.apply(s, 0, a, 0)
    control.apply(s, 0, b, 0)
  }
  s.reset(); s.price = 1; s.volume = 1e9; s.timestampMs = 20 * kBarMs
  b.fill(-1)
  t.equal(state.apply(s, 0, b, 0), kApplyStale)
  t.equal(b[0], -1, 'no row written for a stale request')
  s.reset(); s.price = 120; s.timestampMs = 81 * kBarMs
  state.apply(s, 0, a, 0)
  control.apply(s, 0, b, 0)
  t.same(Array.from(a), Array.from(b), 'state continues as if the stale request never came')
})

t.test('requests without timestamp_ms fall into the bar of their arrival time', async (t) => {
  const state = new SymbolState(kBarMs, kMaxGap)
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  s.price = 100
  state.apply(s, 5 * kBarMs + 10, row, 0)
  t.equal(state.barIndex, 5)
  s.price = 101
  state.apply(s, 5 * kBarMs + 59_999, row, 0)
  t.equal(state.barIndex, 5, 'same bar')
  state.apply(s, 6 * kBarMs, row, 0)
  t.equal(state.barIndex, 6, 'next bar')
})

t.test('a request without timestamp_ms is never stale: it joins a current bar that is ahead of its arrival', async (t) => {
  // Issue 10: a timestamp inside max_clock_skew_ms opens the next bar before the server's clock
  // reaches it; arrivals in those milliseconds must not be refused for a timestamp they never sent.
  const state = new SymbolState(kBarMs, kMaxGap)
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  s.price = 100; s.timestampMs = 5 * kBarMs + 30_000
  state.apply(s, 5 * kBarMs + 30_000, row, 0)
  s.reset(); s.price = 101; s.timestampMs = 6 * kBarMs
  t.equal(state.apply(s, 6 * kBarMs - 1_500, row, 0), kApplyOk, 'a timestamp 1.5 s ahead opens bar 6')
  s.reset(); s.price = 102
  t.equal(state.apply(s, 6 * kBarMs - 1_000, row, 0), kApplyOk, 'no timestamp, arrival still in bar 5: accepted')
  t.equal(state.barIndex, 6, 'into the current bar, not a new one')
  t.equal(state.close, 102, 'and it updated that bar')
  s.reset(); s.price = 103; s.timestampMs = 6 * kBarMs - 900
  t.equal(state.apply(s, 6 * kBarMs - 800, row, 0), kApplyStale, 'an explicit timestamp in bar 5 is still stale')
})

t.test('the feature store is bounded and drops the least recently used symbol', async (t) => {
  const store = new FeatureStore({ barMs: kBarMs, maxGapBars: kMaxGap, maxSymbols: 3 })
  const s = new MarketSnapshot()
  const row = new Float32Array(kFeatureCount)
  s.price = 10
  for (const sym of ['A', 'B', 'C', 'A', 'D']) store.apply(sym, s, 1000, row, 0)
  t.equal(store.size, 3)
  t.ok(store.has('A') && store.has('C') && store.has('D'), 'A (recently used), C and D stay')
  t.notOk(store.has('B'), 'B, the least recently used, was dropped')
  t.equal(store.evictions, 1)
  for (let i = 0; i < 10_000; i++) store.apply(`X${i}`, s, 1000, row, 0)
  t.equal(store.size, 3, 'ten thousand invented symbols keep the store at its bound')
})

t.test('missing inputs reach the row as NaN, never 0', async (t) => {
  const state = new SymbolState(kBarMs, kMaxGap)
  const s = new MarketSnapshot()
  const row = new Float32Array(kFeatureCount)
  s.price = 100
  state.apply(s, 0, row, 0)
  for (const name of ['book_imbalance', 'depth5_imbalance', 'spread_bps', 'micro_gap_bps', 'btc_ret_1', 'funding_rate', 'ret_1', 'volume_z_30']) {
    t.ok(Number.isNaN(row[kFeatureNames.indexOf(name as typeof kFeatureNames[number])]!), `${name} is NaN`)
  }
})
