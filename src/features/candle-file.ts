import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'

/** Candles as columns, in the layout of `data/*.csv.gz`: `open_time_ms,open,high,low,close,volume`. */
export interface CandleColumns {
  readonly openTimeMs: Float64Array
  readonly open: Float64Array
  readonly high: Float64Array
  readonly low: Float64Array
  readonly close: Float64Array
  readonly volume: Float64Array
  readonly length: number
}

const kHeader = 'open_time_ms,open,high,low,close,volume'

/** Reads a (gzip'd when the name ends in .gz) candle CSV; rejects an unknown header or unsorted rows. */
export function readCandleFile (path: string): CandleColumns {
  const raw = readFileSync(path)
  const text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')
  const lines = text.split('\n')
  if (lines[0]?.trim() !== kHeader) throw new Error(`${path}: expected header "${kHeader}", got "${lines[0] ?? ''}"`)
  let n = 0
  for (let i = 1; i < lines.length; i++) if (lines[i]!.length > 0) n++
  const cols = {
    openTimeMs: new Float64Array(n), open: new Float64Array(n), high: new Float64Array(n),
    low: new Float64Array(n), close: new Float64Array(n), volume: new Float64Array(n), length: n,
  }
  let row = 0
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.length === 0) continue
    const f = line.split(',')
    if (f.length !== 6) throw new Error(`${path}:${i + 1}: expected 6 fields, got ${f.length}`)
    const t = Number(f[0])
    if (row > 0 && t <= cols.openTimeMs[row - 1]!) throw new Error(`${path}:${i + 1}: rows are not sorted by open_time_ms`)
    cols.openTimeMs[row] = t
    cols.open[row] = Number(f[1])
    cols.high[row] = Number(f[2])
    cols.low[row] = Number(f[3])
    cols.close[row] = Number(f[4])
    cols.volume[row] = Number(f[5])
    row++
  }
  return cols
}

/** Funding events (`funding_time_ms,funding_rate`), rounded to the second as the data README advises. */
export function readFundingFile (path: string): { timeMs: Float64Array, rate: Float64Array } {
  const raw = readFileSync(path)
  const text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')
  const lines = text.split('\n').filter((l, i) => i > 0 && l.length > 0)
  const timeMs = new Float64Array(lines.length)
  const rate = new Float64Array(lines.length)
  lines.forEach((line, i) => {
    const [t, r] = line.split(',')
    timeMs[i] = Math.round(Number(t) / 1000) * 1000
    rate[i] = Number(r)
  })
  return { timeMs, rate }
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
