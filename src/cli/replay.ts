/**
 * Replays historical candles through the serving feature code and writes the training matrix.
 *
 *   npm run replay -- --data-dir data --symbol BNBUSDT --out training/out/BNBUSDT-matrix.csv
 *
 * Each candle becomes one request (price = close, the candle's open/high/low/volume, BTC's close of
 * the same minute as btc_price, timestamp_ms = open time), applied to a `SymbolState` exactly as a
 * live request is: one implementation, no training/serving skew.
 *
 * Labels: 1 when the next bar's close is above this bar's close, 0 when below. Ties (unchanged
 * close, 0.6-11% of minutes depending on market and year) are dropped: the bot trades a direction
 * and a tie has none. Rows whose next candle is not exactly one bar later (a gap in the data) get
 * no label and are dropped, since the label would straddle the gap. A gap longer than
 * `max_gap_bars` also resets the symbol's history, as in serving.
 */
import { createWriteStream } from 'node:fs'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { kFeatureCount, kFeatureNames } from '../features/feature-spec.js'
import { MarketSnapshot } from '../features/market-snapshot.js'
import { SymbolState } from '../features/symbol-state.js'
import { readCandleFile, readFundingFile, type CandleColumns } from '../features/candle-file.js'

export interface ReplayInput {
  readonly candles: CandleColumns
  readonly btc: CandleColumns | null
  readonly funding: { timeMs: Float64Array, rate: Float64Array } | null
  readonly barMs: number
  readonly maxGapBars: number
  /** Report tie bars to `onRow` with label null instead of dropping them (for backtests). */
  readonly keepTies?: boolean
}

export interface ReplayStats {
  candles: number
  rows: number
  ties: number
  unlabelled: number
  resets: number
  btcMissing: number
}

/**
 * Calls `onRow(openTimeMs, features, label)` for every labelled candle, in time order. `features`
 * is a reused buffer: copy it if you keep it.
 */
export function replayCandles (input: ReplayInput, onRow: (openTimeMs: number, features: Float32Array, label: 0 | 1 | null) => void): ReplayStats {
  const { candles, btc, funding, barMs, maxGapBars } = input
  const keepTies = input.keepTies === true
  const state = new SymbolState(barMs, maxGapBars)
  const snapshot = new MarketSnapshot()
  const row = new Float32Array(kFeatureCount)
  const stats: ReplayStats = { candles: candles.length, rows: 0, ties: 0, unlabelled: 0, resets: 0, btcMissing: 0 }
  let b = 0 // cursor into btc, advanced in step since both are sorted
  let f = -1 // index of the last funding event at or before the candle
  for (let i = 0; i < candles.length; i++) {
    const t = candles.openTimeMs[i]!
    snapshot.reset()
    snapshot.price = candles.close[i]!
    snapshot.open = candles.open[i]!
    snapshot.high = candles.high[i]!
    snapshot.low = candles.low[i]!
    snapshot.volume = candles.volume[i]!
    snapshot.timestampMs = t
    if (btc !== null) {
      while (b < btc.length && btc.openTimeMs[b]! < t) b++
      if (b < btc.length && btc.openTimeMs[b] === t) snapshot.btcPrice = btc.close[b]!
      else stats.btcMissing++
    }
    if (funding !== null) {
      // Funding settles at the event time; a bar sees the last rate settled before it closes.
      while (f + 1 < funding.timeMs.length && funding.timeMs[f + 1]! < t + barMs) f++
      if (f >= 0) snapshot.fundingRate = funding.rate[f]!
    }
    if (i > 0 && t - candles.openTimeMs[i - 1]! > maxGapBars * barMs) stats.resets++
    state.apply(snapshot, t, row, 0)

    const next = i + 1 < candles.length ? candles.openTimeMs[i + 1]! : Number.NaN
    if (next !== t + barMs) { stats.unlabelled++; continue }
    const nextClose = candles.close[i + 1]!
    const close = candles.close[i]!
    if (nextClose === close) {
      stats.ties++
      // A live bot trades tie bars too (it cannot know the next close): a backtest needs their
      // features to count them as losing trades. train.py never fits on them (empty label).
      if (keepTies) onRow(t, row, null)
      continue
    }
    stats.rows++
    onRow(t, row, nextClose > close ? 1 : 0)
  }
  return stats
}

/** Shortest decimal that parses back to the same float32, so the file is exact and compact. */
export function formatFloat32 (v: number): string {
  if (v !== v) return 'NaN'
  if (v === Number.POSITIVE_INFINITY) return 'Infinity'
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity'
  for (let p = 6; p < 10; p++) {
    const s = v.toPrecision(p)
    if (Math.fround(Number(s)) === v) return String(Number(s))
  }
  return String(v)
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string', default: 'data' },
      symbol: { type: 'string', default: 'BNBUSDT' },
      'btc-symbol': { type: 'string', default: 'BTCUSDT' },
      'symbol-file': { type: 'string' },
      'btc-file': { type: 'string' },
      'funding-file': { type: 'string' },
      'no-btc': { type: 'boolean', default: false },
      out: { type: 'string' },
      'bar-ms': { type: 'string', default: '60000' },
      'max-gap-bars': { type: 'string', default: '5' },
      'keep-ties': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help === true) {
    process.stdout.write('usage: npm run replay -- [--data-dir data] [--symbol BNBUSDT] [--btc-symbol BTCUSDT]\n' +
      '         [--symbol-file F] [--btc-file F] [--funding-file F] [--no-btc] [--out training/out/SYMBOL-matrix.csv]\n' +
      '         [--bar-ms 60000] [--max-gap-bars 5] [--keep-ties]\n' +
      '  --keep-ties  also write tie bars (next close unchanged) with an empty label: train.py does not fit\n' +
      '               on them, its backtest counts them as trades that lose (training/README.md)\n')
    return
  }
  const dataDir = values['data-dir']!
  const symbol = values.symbol!
  const symbolFile = values['symbol-file'] ?? join(dataDir, `${symbol}-1m.csv.gz`)
  const btcFile = values['no-btc'] === true ? null : (values['btc-file'] ?? join(dataDir, `${values['btc-symbol']!}-1m.csv.gz`))
  const out = values.out ?? join('training', 'out', `${symbol}-matrix.csv`)
  const barMs = Number(values['bar-ms'])
  const maxGapBars = Number(values['max-gap-bars'])
  if (!Number.isInteger(barMs) || barMs <= 0) throw new Error(`--bar-ms must be a positive integer, got "${values['bar-ms']!}"`)
  if (!Number.isInteger(maxGapBars) || maxGapBars < 1) throw new Error(`--max-gap-bars must be an integer >= 1, got "${values['max-gap-bars']!}"`)

  const candles = readCandleFile(symbolFile)
  const btc = btcFile === null ? null : readCandleFile(btcFile)
  const funding = values['funding-file'] === undefined ? null : readFundingFile(values['funding-file'])

  mkdirSync(dirname(out), { recursive: true })
  const stream = createWriteStream(out)
  stream.write(`open_time_ms,${kFeatureNames.join(',')},label\n`)
  let chunk = ''
  const keepTies = values['keep-ties'] === true
  const stats = replayCandles({ candles, btc, funding, barMs, maxGapBars, keepTies }, (t, features, label) => {
    let line = String(t)
    for (let k = 0; k < features.length; k++) line += ',' + formatFloat32(features[k]!)
    chunk += line + ',' + (label === null ? '' : String(label)) + '\n'
    if (chunk.length > 1 << 20) { stream.write(chunk); chunk = '' }
  })
  stream.end(chunk)
  await new Promise<void>((resolve, reject) => { stream.on('finish', resolve); stream.on('error', reject) })
  process.stdout.write(`replay: ${symbolFile}${btcFile !== null ? ` + ${btcFile}` : ''} -> ${out}\n` +
    `  candles ${stats.candles}, labelled rows ${stats.rows}, ties ${keepTies ? 'kept with an empty label' : 'dropped'} ${stats.ties}, ` +
    `unlabelled (gap or last) ${stats.unlabelled}, history resets ${stats.resets}, minutes without BTC ${stats.btcMissing}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`replay failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
