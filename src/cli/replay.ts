/**
 * Replays historical candles through the serving feature code and writes the training matrix.
 *
 *   npm run replay -- --data-dir data --symbol BNBUSDT --out training/out/BNBUSDT-matrix.csv
 *   npm run replay -- --capture-dir /var/lib/ml/capture --symbol BNBUSDT   (the server's capture_dir files)
 *
 * Capture files (docs/monitoring.md) are candle files with more columns: their BTC price, order
 * book and funding are what the server saw in each bar, so the order-book features are real.
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
import { closeSync, createWriteStream, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { kFeatureCount, kFeatureNames } from '../features/feature-spec.js'
import { MarketSnapshot } from '../features/market-snapshot.js'
import { SymbolState } from '../features/symbol-state.js'
import { formatFloat32, readCandleFile, readFundingFile, type CandleColumns } from '../features/candle-file.js'
import { listCaptureFiles, readCaptureFiles, type CaptureColumns } from '../features/capture-file.js'
import { parseInputSpec, WindowInputWriter, type WindowedInputSpec } from '../features/window-input.js'

export interface ReplayInput {
  readonly candles: CandleColumns
  readonly btc: CandleColumns | null
  readonly funding: { timeMs: Float64Array, rate: Float64Array } | null
  readonly barMs: number
  readonly maxGapBars: number
  /** Report tie bars to `onRow` with label null instead of dropping them (for backtests). */
  readonly keepTies?: boolean
  /** Report every candle: unlabelled ones (a gap, the last) and ties with label null. */
  readonly everyRow?: boolean
  /**
   * Capture files' extra columns (capture_dir, docs/monitoring.md): BTC, order book and funding as
   * the server saw them in each bar; `btc` and `funding` are then not used.
   */
  readonly captured?: CaptureColumns | null
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
 * Calls `onRow(openTimeMs, features, label, state, index)` for every labelled candle (and, with
 * `keepTies`, every tie bar with label null), in time order. `features` is a reused buffer: copy
 * it if you keep it. `state` is the symbol's state just after the candle was applied (read it,
 * e.g. `recentCloses`; never apply to it), `index` the candle's position in `candles`.
 */
export function replayCandles (input: ReplayInput, onRow: (openTimeMs: number, features: Float32Array, label: 0 | 1 | null, state: SymbolState, index: number) => void): ReplayStats {
  const { candles, barMs, maxGapBars } = input
  const everyRow = input.everyRow === true
  const keepTies = input.keepTies === true || everyRow
  const captured = input.captured ?? null
  const btc = captured === null ? input.btc : null
  const funding = captured === null ? input.funding : null
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
    if (captured !== null) {
      snapshot.btcPrice = captured.btcPrice[i]!
      snapshot.bidVolume = captured.bidVolume[i]!
      snapshot.askVolume = captured.askVolume[i]!
      snapshot.bestBid = captured.bestBid[i]!
      snapshot.bestAsk = captured.bestAsk[i]!
      snapshot.bidDepth5 = captured.bidDepth5[i]!
      snapshot.askDepth5 = captured.askDepth5[i]!
      snapshot.fundingRate = captured.fundingRate[i]!
    }
    if (funding !== null) {
      // Funding settles at the event time; a bar sees the last rate settled before it closes.
      while (f + 1 < funding.timeMs.length && funding.timeMs[f + 1]! < t + barMs) f++
      if (f >= 0) snapshot.fundingRate = funding.rate[f]!
    }
    if (i > 0 && t - candles.openTimeMs[i - 1]! > maxGapBars * barMs) stats.resets++
    state.apply(snapshot, t, row, 0)

    const next = i + 1 < candles.length ? candles.openTimeMs[i + 1]! : Number.NaN
    if (next !== t + barMs) { stats.unlabelled++; if (everyRow) onRow(t, row, null, state, i); continue }
    const nextClose = candles.close[i + 1]!
    const close = candles.close[i]!
    if (nextClose === close) {
      stats.ties++
      // A live bot trades tie bars too (it cannot know the next close): a backtest needs their
      // features to count them as losing trades. train.py never fits on them (empty label).
      if (keepTies) onRow(t, row, null, state, i)
      continue
    }
    stats.rows++
    onRow(t, row, nextClose > close ? 1 : 0, state, i)
  }
  return stats
}

export { formatFloat32 }

/** Bytes before the data in the .npy files written here: fixed, so the row count can be patched in at the end. */
const kNpyHeaderBytes = 128

/** NPY v1.0 header for a little-endian float32 C-order array of `shape`, padded to kNpyHeaderBytes. */
export function npyHeader (shape: readonly number[]): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const bodyLength = kNpyHeaderBytes - 10
  if (dict.length + 1 > bodyLength) throw new Error(`npy header too long for shape ${shape.join('x')}`)
  const header = Buffer.alloc(kNpyHeaderBytes, 0x20)
  header.write('\x93NUMPY', 0, 'latin1')
  header[6] = 1
  header[7] = 0
  header.writeUInt16LE(bodyLength, 8)
  header.write(dict, 10, 'latin1')
  header[kNpyHeaderBytes - 1] = 0x0a
  return header
}

export interface WindowedReplayOptions {
  readonly spec: WindowedInputSpec
  /** Keep a row only when its bar index (open_time_ms / bar_ms) is a multiple of `every`: a deterministic thinning. */
  readonly every: number
  readonly fromMs: number
  readonly toMs: number
  /** Also write tie bars (label empty in index.csv): the ensemble backtest trades them, as the bot does. */
  readonly keepTies?: boolean
}

export interface WindowedReplayStats extends ReplayStats {
  written: number
  incomplete: number
  outside: number
}

/**
 * Replays candles and writes, for each labelled row whose window is complete, the windowed tensor
 * (src/features/window-input.ts, the serving code) to `outPath` as .npy [rows, ...dims] float32, and
 * `index.csv` beside it: row, open_time_ms, label, close, next_close (the training side joins on
 * open_time_ms and backtests with the closes). Rows with an incomplete window (fewer than N bars
 * since a reset, or a missing BTC close) are skipped and counted: training sees only rows a server
 * would be able to build.
 */
export function replayWindowed (input: ReplayInput, options: WindowedReplayOptions, outPath: string, indexPath: string): WindowedReplayStats {
  const writer = new WindowInputWriter(options.spec)
  const n = options.spec.window
  const closes = new Float64Array(n)
  const btcCloses = new Float64Array(n)
  const kRowsPerChunk = 1024
  const chunk = new Float32Array(kRowsPerChunk * writer.rowLength)
  const fd = openSync(outPath, 'w')
  // index lines are kept in memory (a few MB even for every labelled row) and written once
  const index: string[] = []
  index.push('row,open_time_ms,label,close,next_close\n')
  let inChunk = 0
  let written = 0
  let incomplete = 0
  let outside = 0
  const flush = (): void => {
    if (inChunk === 0) return
    const bytes = new Uint8Array(chunk.buffer, 0, inChunk * writer.rowLength * 4)
    writeSync(fd, bytes, 0, bytes.length, kNpyHeaderBytes + (written - inChunk) * writer.rowLength * 4)
    inChunk = 0
  }
  try {
    writeSync(fd, npyHeader([0, ...dimsOf(writer)]), 0, kNpyHeaderBytes, 0)
    const stats = replayCandles({ ...input, keepTies: options.keepTies === true }, (t, _features, label, state, i) => {
      if (t < options.fromMs || t >= options.toMs || Math.floor(t / input.barMs) % options.every !== 0) { outside++; return }
      state.recentCloses(closes, writer.needsBtc ? btcCloses : null)
      if (!writer.write(closes, writer.needsBtc ? btcCloses : null, chunk, inChunk * writer.rowLength)) { incomplete++; return }
      index.push(`${written},${t},${label === null ? '' : label},${input.candles.close[i]!},${input.candles.close[i + 1]!}\n`)
      inChunk++
      written++
      if (inChunk === kRowsPerChunk) flush()
    })
    flush()
    writeSync(fd, npyHeader([written, ...dimsOf(writer)]), 0, kNpyHeaderBytes, 0)
    writeFileSync(indexPath, index.join(''))
    return { ...stats, written, incomplete, outside }
  } finally {
    closeSync(fd)
  }
}

function dimsOf (writer: WindowInputWriter): number[] {
  const n = writer.window
  return writer.spec.kind === 'gaf' ? [writer.spec.channels.length, n, n] : [writer.spec.channels.length, n]
}

const kDefaultChannels: Record<'gaf' | 'sequence', string> = {
  gaf: 'gasf_close,gadf_close,gasf_btc',
  sequence: 'close_scaled,close_logret,btc_scaled',
}

function parseDateMs (flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text)
  if (!Number.isFinite(ms)) throw new Error(`${flag} must be a date like 2026-03-23 or 2026-03-23T12:00:00Z, got "${text}"`)
  return ms
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
      'capture-dir': { type: 'string' },
      'no-btc': { type: 'boolean', default: false },
      out: { type: 'string' },
      'bar-ms': { type: 'string', default: '60000' },
      'max-gap-bars': { type: 'string', default: '5' },
      'keep-ties': { type: 'boolean', default: false },
      input: { type: 'string', default: 'tabular' },
      window: { type: 'string', default: '32' },
      channels: { type: 'string' },
      every: { type: 'string', default: '1' },
      from: { type: 'string' },
      to: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help === true) {
    process.stdout.write('usage: npm run replay -- [--data-dir data] [--symbol BNBUSDT] [--btc-symbol BTCUSDT]\n' +
      '         [--symbol-file F] [--btc-file F] [--funding-file F] [--no-btc] [--out training/out/SYMBOL-matrix.csv]\n' +
      '         [--bar-ms 60000] [--max-gap-bars 5] [--keep-ties]\n' +
      '  --capture-dir DIR  read the server\'s capture files (capture_dir) for --symbol instead: real order book,\n' +
      '               BTC and funding as served (docs/monitoring.md)\n' +
      '  --keep-ties  also write tie bars (next close unchanged) with an empty label: train.py does not fit\n' +
      '               on them, its backtest counts them as trades that lose (training/README.md)\n' +
      '       windowed inputs for a windowed member (docs/phase2.md), written as .npy + .index.csv + .json:\n' +
      '         --input gaf|sequence [--window 32] [--channels gasf_close,gadf_close,gasf_btc]\n' +
      '         [--every 1] [--from 2021-04-02] [--to 2026-05-01] [--out training/out/SYMBOL-gaf32.npy]\n' +
      '         (--keep-ties here writes tie bars with an empty label in the .index.csv)\n')
    return
  }
  const dataDir = values['data-dir']!
  const symbol = values.symbol!
  const symbolFile = values['symbol-file'] ?? join(dataDir, `${symbol}-1m.csv.gz`)
  const btcFile = values['no-btc'] === true ? null : (values['btc-file'] ?? join(dataDir, `${values['btc-symbol']!}-1m.csv.gz`))
  const inputKind = values.input!
  if (inputKind !== 'tabular' && inputKind !== 'gaf' && inputKind !== 'sequence') throw new Error(`--input must be tabular, gaf or sequence, got "${inputKind}"`)
  const out = values.out ?? join('training', 'out', inputKind === 'tabular' ? `${symbol}-matrix.csv` : `${symbol}-${inputKind}${values.window!}.npy`)
  const barMs = Number(values['bar-ms'])
  const maxGapBars = Number(values['max-gap-bars'])
  if (!Number.isInteger(barMs) || barMs <= 0) throw new Error(`--bar-ms must be a positive integer, got "${values['bar-ms']!}"`)
  if (!Number.isInteger(maxGapBars) || maxGapBars < 1) throw new Error(`--max-gap-bars must be an integer >= 1, got "${values['max-gap-bars']!}"`)

  const captureDir = values['capture-dir'] ?? null
  let captured: CaptureColumns | null = null
  if (captureDir !== null) {
    const files = listCaptureFiles(captureDir)
    if (files.length === 0) throw new Error(`--capture-dir ${captureDir}: no capture-*.csv.gz files`)
    captured = readCaptureFiles(files, symbol)
    if (captured.length === 0) throw new Error(`--capture-dir ${captureDir}: no bars of symbol ${symbol} in ${files.length} files`)
  }
  const candles = captured ?? readCandleFile(symbolFile)
  const btc = btcFile === null || captured !== null ? null : readCandleFile(btcFile)
  const funding = values['funding-file'] === undefined || captured !== null ? null : readFundingFile(values['funding-file'])

  mkdirSync(dirname(out), { recursive: true })
  if (inputKind !== 'tabular') {
    const spec = parseInputSpec({ kind: inputKind, window: Number(values.window), channels: (values.channels ?? kDefaultChannels[inputKind]).split(',') }) as WindowedInputSpec
    const every = Number(values.every)
    if (!Number.isInteger(every) || every < 1) throw new Error(`--every must be an integer >= 1, got "${values.every!}"`)
    if (!out.endsWith('.npy')) throw new Error(`--out must end in .npy for --input ${inputKind}, got "${out}"`)
    const stem = out.slice(0, -'.npy'.length)
    const options = { spec, every, fromMs: parseDateMs('--from', values.from, -Infinity), toMs: parseDateMs('--to', values.to, Infinity), keepTies: values['keep-ties'] === true }
    const started = performance.now()
    const stats = replayWindowed({ candles, btc, funding, barMs, maxGapBars }, options, out, `${stem}.index.csv`)
    writeFileSync(`${stem}.json`, JSON.stringify({
      input: spec,
      dtype: 'float32',
      shape: [stats.written, ...(spec.kind === 'gaf' ? [spec.channels.length, spec.window, spec.window] : [spec.channels.length, spec.window])],
      rows: stats.written,
      incomplete_windows_skipped: stats.incomplete,
      outside_selection: stats.outside,
      every, from: values.from ?? null, to: values.to ?? null, keep_ties: values['keep-ties'] === true,
      bar_ms: barMs, max_gap_bars: maxGapBars,
      symbol_file: symbolFile, btc_file: btcFile,
      code: 'src/features/window-input.ts (WindowInputWriter), the serving implementation',
    }, null, 2) + '\n')
    process.stdout.write(`replay: ${symbolFile}${btcFile !== null ? ` + ${btcFile}` : ''} -> ${out} (+ ${stem}.index.csv, ${stem}.json)\n` +
      `  ${spec.kind} window ${spec.window} channels ${spec.channels.join(',')}: ${stats.written} rows written, ` +
      `${stats.incomplete} incomplete windows skipped, ${stats.outside} outside --from/--to/--every; ` +
      `labelled rows ${stats.rows}, ties ${stats.ties}, resets ${stats.resets}, minutes without BTC ${stats.btcMissing} ` +
      `(${((performance.now() - started) / 1000).toFixed(1)} s)\n`)
    return
  }
  const stream = createWriteStream(out)
  stream.write(`open_time_ms,${kFeatureNames.join(',')},label\n`)
  let chunk = ''
  const keepTies = values['keep-ties'] === true
  const stats = replayCandles({ candles, btc, funding, barMs, maxGapBars, keepTies, captured }, (t, features, label) => {
    let line = String(t)
    for (let k = 0; k < features.length; k++) line += ',' + formatFloat32(features[k]!)
    chunk += line + ',' + (label === null ? '' : String(label)) + '\n'
    if (chunk.length > 1 << 20) { stream.write(chunk); chunk = '' }
  })
  stream.end(chunk)
  await new Promise<void>((resolve, reject) => { stream.on('finish', resolve); stream.on('error', reject) })
  const source = captureDir !== null ? `capture ${captureDir} (${symbol})` : `${symbolFile}${btcFile !== null ? ` + ${btcFile}` : ''}`
  process.stdout.write(`replay: ${source} -> ${out}\n` +
    `  candles ${stats.candles}, labelled rows ${stats.rows}, ties ${keepTies ? 'kept with an empty label' : 'dropped'} ${stats.ties}, ` +
    `unlabelled (gap or last) ${stats.unlabelled}, history resets ${stats.resets}, minutes without BTC ${stats.btcMissing}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`replay failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
