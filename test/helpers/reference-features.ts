/**
 * A deliberately naive, from-scratch computation of every feature over the full list of bars since
 * the last history reset. It shares no code with src/features beyond the feature names, so the
 * incremental `SymbolState` can be checked against it.
 */
import { kFeatureNames } from '../../src/features/feature-spec.js'
import type { MarketSnapshot } from '../../src/features/market-snapshot.js'

export interface RefBar {
  index: number
  open: number
  high: number
  low: number
  close: number
  volume: number
  btc: number
}

const isNum = (x: number): boolean => !Number.isNaN(x)

function sampleStd (xs: number[], minCount: number): number {
  const v = xs.filter(isNum)
  if (v.length < minCount || v.length < 2) return NaN
  const mean = v.reduce((a, b) => a + b, 0) / v.length
  const ss = v.reduce((a, b) => a + (b - mean) * (b - mean), 0)
  return Math.sqrt(ss / (v.length - 1))
}

function mean (xs: number[], minCount: number): number {
  const v = xs.filter(isNum)
  return v.length >= minCount ? v.reduce((a, b) => a + b, 0) / v.length : NaN
}

/** `bars` is the history since the last reset, current bar last; `s` is the latest request. */
export function referenceFeatures (bars: RefBar[], s: MarketSnapshot, barMs: number): Record<string, number> {
  const m = bars.length - 1
  const cur = bars[m]!
  const C = bars.map(b => b.close)
  const B = bars.map(b => b.btc)
  const V = bars.map(b => b.volume)
  const at = <T>(arr: T[], j: number): T | number => (j >= 0 ? arr[j]! : NaN)
  const r = (j: number): number => (j >= 1 ? Math.log(C[j]! / C[j - 1]!) : NaN)
  const br = (j: number): number => (j >= 1 ? Math.log(B[j]! / B[j - 1]!) : NaN)
  const range = (from: number, to: number): number[] => {
    const out: number[] = []
    for (let j = Math.max(0, from); j <= to; j++) out.push(j)
    return out
  }
  const f: Record<string, number> = {}
  for (const k of [1, 3, 5, 15, 60]) f[`ret_${k}`] = Math.log(C[m]! / (at(C, m - k) as number))
  f.vol_15 = sampleStd(range(m - 14, m).map(r), 8)
  f.vol_60 = sampleStd(range(m - 59, m).map(r), 30)
  f.vol_ratio_15_60 = f.vol_60! > 0 ? f.vol_15! / f.vol_60! : NaN

  // Wilder RSI: simple mean of the first 14 changes, then smoothing.
  let rsi = NaN
  if (m >= 14) {
    let ag = 0; let al = 0
    for (let j = 1; j <= 14; j++) { const d = C[j]! - C[j - 1]!; ag += Math.max(d, 0); al += Math.max(-d, 0) }
    ag /= 14; al /= 14
    for (let j = 15; j <= m; j++) {
      const d = C[j]! - C[j - 1]!
      ag = (ag * 13 + Math.max(d, 0)) / 14
      al = (al * 13 + Math.max(-d, 0)) / 14
    }
    rsi = ag + al > 0 ? (100 * ag) / (ag + al) : 50
  }
  f.rsi_14 = rsi
  f.ma_gap_30 = C[m]! / mean(range(m - 29, m).map(j => C[j]!), 15) - 1

  const { open, high, low, close } = cur
  f.range_pct = (high - low) / open
  f.body_pct = (close - open) / open
  f.upper_wick_pct = (high - Math.max(open, close)) / open
  f.lower_wick_pct = (Math.min(open, close) - low) / open
  f.close_pos = high - low > 0 ? (close - low) / (high - low) : 0.5

  const prevVol = range(m - 30, m - 1).map(j => V[j]!)
  const vStd = sampleStd(prevVol, 15)
  f.volume_z_30 = vStd > 0 ? (V[m]! - mean(prevVol, 15)) / vStd : NaN
  const vLong = mean(range(m - 29, m).map(j => V[j]!), 15)
  f.volume_ratio_5_30 = vLong > 0 ? mean(range(m - 4, m).map(j => V[j]!), 3) / vLong : NaN

  const imb = (a: number, b: number): number => (a + b > 0 ? (a - b) / (a + b) : NaN)
  f.book_imbalance = imb(s.bidVolume, s.askVolume)
  f.depth5_imbalance = imb(s.bidDepth5, s.askDepth5)
  const mid = (s.bestBid + s.bestAsk) / 2
  f.spread_bps = mid > 0 ? ((s.bestAsk - s.bestBid) / mid) * 1e4 : NaN
  f.micro_gap_bps = mid > 0 ? ((s.price - mid) / mid) * 1e4 : NaN

  for (const k of [1, 5, 15]) f[`btc_ret_${k}`] = Math.log(B[m]! / (at(B, m - k) as number))
  const pairs = range(m - 59, m).map(j => [r(j), br(j)] as const).filter(([x, y]) => isNum(x) && isNum(y))
  let corr = NaN; let beta = NaN
  if (pairs.length >= 30) {
    const n = pairs.length
    const mx = pairs.reduce((a, p) => a + p[0], 0) / n
    const my = pairs.reduce((a, p) => a + p[1], 0) / n
    const cov = pairs.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0) / (n - 1)
    const vx = pairs.reduce((a, p) => a + (p[0] - mx) ** 2, 0) / (n - 1)
    const vy = pairs.reduce((a, p) => a + (p[1] - my) ** 2, 0) / (n - 1)
    if (vx > 0 && vy > 0) corr = cov / Math.sqrt(vx * vy)
    if (vy > 0) beta = cov / vy
  }
  f.btc_corr_60 = corr
  f.btc_beta_60 = beta
  f.resid_ret_1 = f.ret_1! - beta * f.btc_ret_1!
  f.rel_strength_15 = f.ret_15! - f.btc_ret_15!
  f.funding_rate = s.fundingRate
  const day = 86_400_000
  const frac = (((cur.index * barMs) % day) + day) % day / day
  f.tod_sin = Math.sin(2 * Math.PI * frac)
  f.tod_cos = Math.cos(2 * Math.PI * frac)
  for (const name of kFeatureNames) if (!(name in f)) throw new Error(`reference misses ${name}`)
  return f
}

export { prng } from './prng.js'
