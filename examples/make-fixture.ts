/**
 * Writes examples/fixtures/synthetic-BNBUSDT-1m.csv, the candles `npm run example` replays when no
 * real candle file is at hand: 240 one-minute candles of a seeded random walk around 600 USDT,
 * in the layout of `npm run download` (`open_time_ms,open,high,low,close,volume`). Synthetic on
 * purpose (nothing copied from a data set); deterministic, so the file only changes when this
 * script does.
 *
 * The file is committed (12 kB), so `npm run example` works on a fresh clone with no step before
 * it; it lives in examples/fixtures/ because .gitignore hides every `data/` folder (the downloaded
 * candles). test/examples/fixture.test.ts fails if the committed file and this generator differ.
 *
 *   npx tsx examples/make-fixture.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

export const kFixtureUrl = new URL('fixtures/synthetic-BNBUSDT-1m.csv', import.meta.url)
const kStartMs = Date.UTC(2026, 3, 1, 0, 0, 0)
const kCandles = 240

/** mulberry32 */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The fixture's whole text. */
export function syntheticCandlesCsv (): string {
  const rand = rng(20260401)
  const rows = ['open_time_ms,open,high,low,close,volume']
  let price = 600
  for (let i = 0; i < kCandles; i++) {
    const open = price
    // A few ticks per minute, 0.05% steps with a slight mean reversion toward 600.
    let high = open
    let low = open
    for (let tick = 0; tick < 12; tick++) {
      price *= 1 + (rand() - 0.5) * 0.001 + (600 - price) * 0.000002
      high = Math.max(high, price)
      low = Math.min(low, price)
    }
    const volume = 200 + rand() * 1800
    rows.push([kStartMs + i * 60_000, open.toFixed(2), high.toFixed(2), low.toFixed(2), price.toFixed(2), volume.toFixed(3)].join(','))
  }
  return `${rows.join('\n')}\n`
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mkdirSync(new URL('fixtures/', import.meta.url), { recursive: true })
  writeFileSync(kFixtureUrl, syntheticCandlesCsv())
  process.stdout.write(`wrote examples/fixtures/synthetic-BNBUSDT-1m.csv (${kCandles} candles)\n`)
}
