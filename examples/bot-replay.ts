/**
 * The trading bot's side of the loop, in one command: replays 1-minute candles through the
 * client library against a running server, one tick per candle, and prints the bot's log lines.
 *
 *   npm start                                   # in another terminal: the server on :8000
 *   npm run example                             # --url defaults to http://127.0.0.1:${PORT:-8000}
 *   npm run example -- --url http://127.0.0.1:8000 --csv data/BNBUSDT-1m.csv.gz --limit 500
 *
 * Candles: `--csv FILE` (the layout of `npm run download`: open_time_ms,open,high,low,close,volume,
 * .csv or .csv.gz). Without it, `data/BNBUSDT-1m.csv.gz` when `npm run download` has fetched real
 * candles, else the small synthetic file committed in examples/fixtures/ (examples/make-fixture.ts). With real
 * candles, `data/BTCUSDT-1m.csv.gz` (if present) supplies btc_price for the same minutes.
 *
 * Each run sends under its own symbol (`BNBUSDT-r<run id>`, or `--symbol`): the server keeps
 * per-symbol history and refuses a bar older than the symbol's latest, so a second replay of the
 * same candles under one symbol would be refused as stale.
 */
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { PredictionClient, toSignal, type PredictionRequest } from '../src/index.js'
import { readCandleFile, type CandleColumns } from '../src/features/candle-file.js'

const kRealCandles = 'data/BNBUSDT-1m.csv.gz'
const kRealBtc = 'data/BTCUSDT-1m.csv.gz'
const kSynthetic = new URL('fixtures/synthetic-BNBUSDT-1m.csv', import.meta.url)
// The server reads PORT too (README "Try it"), so one exported PORT points both at the same port.
const kDefaultUrl = `http://127.0.0.1:${process.env.PORT ?? '8000'}`

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: kDefaultUrl },
    csv: { type: 'string' },
    'btc-csv': { type: 'string' },
    symbol: { type: 'string' },
    limit: { type: 'string', default: '120' },
    'interval-ms': { type: 'string', default: '0' },
    format: { type: 'string', default: 'binary' },
    'timeout-ms': { type: 'string', default: '100' },
    threshold: { type: 'string', default: '0.55' },
    weight: { type: 'string', default: '0.4' },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write('npm run example -- [--url http://127.0.0.1:${PORT:-8000}] [--csv FILE] [--btc-csv FILE] [--symbol S] [--limit N]\n' +
    '                   [--interval-ms MS] [--format binary|json] [--timeout-ms 100] [--threshold 0.55] [--weight 0.4]\n')
  process.exit(0)
}

function positive (name: string, raw: string, allowZero = false): number {
  const v = Number(raw)
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    process.stderr.write(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${raw}"\n`)
    process.exit(2)
  }
  return v
}

const limit = positive('limit', values.limit)
const intervalMs = positive('interval-ms', values['interval-ms'], true)
const timeoutMs = positive('timeout-ms', values['timeout-ms'])
const threshold = positive('threshold', values.threshold)
const weight = positive('weight', values.weight)
if (values.format !== 'binary' && values.format !== 'json') {
  process.stderr.write(`--format must be binary or json, got "${values.format}"\n`)
  process.exit(2)
}

let csvPath: string | URL
let btcPath: string | null = values['btc-csv'] ?? null
if (values.csv !== undefined) {
  csvPath = values.csv
} else if (existsSync(kRealCandles)) {
  csvPath = kRealCandles
  if (btcPath === null && existsSync(kRealBtc)) btcPath = kRealBtc
} else {
  csvPath = kSynthetic
  process.stdout.write('No real candles found (data/BNBUSDT-1m.csv.gz): replaying the synthetic examples/fixtures file.\n' +
    'For real ones: npm run download -- --symbol BNBUSDT,BTCUSDT --from 2026-03 --to 2026-03\n\n')
}

const all = readCandleFile(csvPath instanceof URL ? csvPath.pathname : csvPath)
const start = Math.max(0, all.length - limit)
const btc: CandleColumns | null = btcPath === null ? null : readCandleFile(btcPath)
const btcClose = new Map<number, number>()
if (btc !== null) for (let i = 0; i < btc.length; i++) btcClose.set(btc.openTimeMs[i]!, btc.close[i]!)
const symbol = values.symbol ?? `BNBUSDT-r${Date.now().toString(36)}`

const client = new PredictionClient({ url: values.url, format: values.format, timeoutMs })
const health = await client.healthCheck()
if (!health.healthy) {
  process.stdout.write(`ML service not healthy at ${values.url} (${health.error?.message ?? `HTTP ${String(health.statusCode)}`}): the bot runs in fallback mode.\n`)
} else {
  process.stdout.write(`ML service healthy: model ${String(health.body?.model_version)}\n`)
}
try {
  const hello = await client.waitForConnection(2000)
  process.stdout.write(`WebSocket up (${values.format} frames, protocol ${hello.protocol_version}, ${hello.features.length} features)\n`)
} catch {
  process.stdout.write('WebSocket not up: predictions go over HTTP\n')
}
process.stdout.write(`Replaying ${all.length - start} candles as ${symbol} (from ${new Date(all.openTimeMs[start] ?? 0).toISOString()})\n\n`)

const latencies: number[] = []
let signals = 0
let below = 0
let fallbacks = 0
for (let i = start; i < all.length; i++) {
  const request: PredictionRequest = {
    symbol,
    price: all.close[i]!,
    open: all.open[i]!,
    high: all.high[i]!,
    low: all.low[i]!,
    volume: all.volume[i]!,
    btc_price: btcClose.get(all.openTimeMs[i]!) ?? null,
    timestamp_ms: all.openTimeMs[i]!,
  }
  const started = performance.now()
  // Logs "ML signal: LONG (confidence: 0.72, latency: 6.5ms)" or the fallback line, as the bot does.
  const prediction = await client.predictWithFallback(request)
  if (prediction === null) {
    fallbacks++
  } else {
    latencies.push(performance.now() - started)
    const signal = toSignal(prediction, { confidenceThreshold: threshold, weight })
    if (signal === null) below++
    else {
      signals++
      process.stdout.write(`  -> signal ${signal.source}: score ${signal.score.toFixed(3)}, weight ${signal.weight}\n`)
    }
  }
  if (intervalMs > 0) await new Promise(resolve => setTimeout(resolve, intervalMs))
}
await client.close()

latencies.sort((a, b) => a - b)
const pct = (p: number): string => (latencies.length === 0 ? '-' : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(2))
process.stdout.write(`\n${all.length - start} ticks: ${signals} signals at confidence >= ${threshold}, ${below} predictions below it, ${fallbacks} in fallback mode\n`)
process.stdout.write(`round trip ms: p50 ${pct(0.5)}, p99 ${pct(0.99)}, max ${pct(1)}\n`)
// Not one answer from the server is a failure of the run (a script or CI step can tell), even
// though the bot itself would carry on in fallback mode.
if (latencies.length === 0 && all.length - start > 0) process.exitCode = 1
