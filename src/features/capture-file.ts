import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { constants, gunzipSync } from 'node:zlib'
import { kFeatureCount, kFeatureNames } from './feature-spec.js'
import type { CandleColumns } from './candle-file.js'

/**
 * Capture files (capture_dir, docs/monitoring.md): gzip CSV, one row per closed bar of any symbol.
 * The first six columns are those of the training candle files (`data/*.csv.gz`), so a capture is a
 * candle file with more columns: what the server saw of the order book, BTC and funding in that
 * bar, the feature row the model saw, and each model's probability and version. Numbers are
 * written exactly (float64 shortest form, features as float32 shortest form); a missing value is
 * `NaN`, a missing version is empty. Symbol and versions are percent-encoded (a comma cannot split
 * a field).
 */
export const kCaptureColumns = [
  'open_time_ms', 'open', 'high', 'low', 'close', 'volume',
  'btc_price', 'bid_volume', 'ask_volume', 'best_bid', 'best_ask', 'bid_depth5', 'ask_depth5', 'funding_rate',
  ...kFeatureNames,
  'symbol', 'p_serving', 'serving_version', 'p_shadow', 'shadow_version',
] as const
export const kCaptureHeader = kCaptureColumns.join(',')
/** Numeric columns before `symbol`: candle (6), btc, book (6), funding, features. */
export const kCaptureNumeric = 14 + kFeatureCount
export const kCaptureFilePattern = /^capture-\d{8}T\d{9}Z(-\d+)?\.csv\.gz$/

/** One symbol's captured bars, in time order, as candle columns plus what else was captured. */
export interface CaptureColumns extends CandleColumns {
  readonly btcPrice: Float64Array
  readonly bidVolume: Float64Array
  readonly askVolume: Float64Array
  readonly bestBid: Float64Array
  readonly bestAsk: Float64Array
  readonly bidDepth5: Float64Array
  readonly askDepth5: Float64Array
  readonly fundingRate: Float64Array
  /** length x kFeatureCount, row-major: the feature row the server computed for the bar. */
  readonly features: Float32Array
  readonly pServing: Float64Array
  readonly pShadow: Float64Array
}

/** Capture files of a folder, oldest first (their names hold their start time). */
export function listCaptureFiles (dir: string): string[] {
  return readdirSync(dir).filter(n => kCaptureFilePattern.test(n)).sort().map(n => join(dir, n))
}

/**
 * Reads capture files and keeps `symbol`'s rows, sorted by open time; a bar seen twice (two
 * servers, or a restart that re-served a bar) keeps the later file's row. A file cut short (a
 * crash mid-write) is read up to where it ends.
 */
export function readCaptureFiles (paths: readonly string[], symbol: string): CaptureColumns {
  const byTime = new Map<number, string[]>()
  const wanted = encodeURIComponent(symbol)
  const symbolAt = kCaptureNumeric
  for (const path of paths) {
    const text = gunzipSync(readFileSync(path), { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8')
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      if (line.length === 0) continue
      if (line === kCaptureHeader) continue // every gzip member starts a file's worth of header only once; tolerate repeats
      const f = line.split(',')
      if (f.length !== kCaptureColumns.length) {
        if (i === lines.length - 1) continue // the cut-short last line of a crashed write
        if (line.startsWith('open_time_ms,')) throw new Error(`${path}: unknown capture header (another build?): ${line.slice(0, 80)}...`)
        throw new Error(`${path}:${i + 1}: expected ${kCaptureColumns.length} fields, got ${f.length}`)
      }
      if (f[symbolAt] !== wanted) continue
      byTime.set(Number(f[0]), f)
    }
  }
  const times = [...byTime.keys()].sort((a, b) => a - b)
  const n = times.length
  const col = (): Float64Array => new Float64Array(n)
  const out = {
    openTimeMs: col(), open: col(), high: col(), low: col(), close: col(), volume: col(),
    btcPrice: col(), bidVolume: col(), askVolume: col(), bestBid: col(), bestAsk: col(),
    bidDepth5: col(), askDepth5: col(), fundingRate: col(),
    features: new Float32Array(n * kFeatureCount), pServing: col(), pShadow: col(), length: n,
  }
  const numeric = [out.openTimeMs, out.open, out.high, out.low, out.close, out.volume, out.btcPrice,
    out.bidVolume, out.askVolume, out.bestBid, out.bestAsk, out.bidDepth5, out.askDepth5, out.fundingRate]
  times.forEach((t, r) => {
    const f = byTime.get(t)!
    for (let c = 0; c < numeric.length; c++) numeric[c]![r] = Number(f[c])
    for (let k = 0; k < kFeatureCount; k++) out.features[r * kFeatureCount + k] = Number(f[14 + k])
    out.pServing[r] = Number(f[symbolAt + 1])
    out.pShadow[r] = Number(f[symbolAt + 3])
  })
  return out
}
