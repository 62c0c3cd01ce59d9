/**
 * A SymbolState with a full history (70 one-minute bars of a seeded random walk, BTC alongside),
 * like a symbol that has been trading for an hour: what the window micro-benches read from.
 */
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { SymbolState } from '../../src/features/symbol-state.js'

export function warmSymbolState (barMs = 60_000, bars = 70): SymbolState {
  const state = new SymbolState(barMs, 5)
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  let price = 300
  let btc = 60_000
  let seed = 7
  const random = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296 }
  for (let b = 0; b < bars; b++) {
    s.reset()
    price *= Math.exp((random() - 0.5) * 0.004)
    btc *= Math.exp((random() - 0.5) * 0.004)
    s.price = price; s.btcPrice = btc; s.timestampMs = (29_000_000 + b) * barMs
    state.apply(s, 0, row, 0)
  }
  return state
}
