/**
 * Computes a model's `feature_reference` (the training distribution that /metrics drift compares
 * live features with, docs/monitoring.md) from the replay of the candles it was trained on, and
 * optionally adds it to the model's metadata file.
 *
 *   npx tsx scripts/feature-reference.ts --data-dir data --symbol BNBUSDT --until 2026-03-23T00:00:00Z \
 *     [--write models/xgboost_phase1_v1.json]
 *
 * Per feature: 9 inner edges at the deciles of its non-NaN values over the labelled rows before
 * `--until` (the training split), the share of those values in each of the 10 bins (bin i is
 * [edges[i-1], edges[i]), as src/monitoring/drift.ts bins), and its NaN share. `--write` inserts
 * the key at the end of the JSON object and leaves every other byte of the file as it was
 * (replacing an earlier feature_reference, which must then be the last key, as this script writes it).
 *
 *   npx tsx scripts/feature-reference.ts --matrix training/out/BNBUSDT-capture.csv [--until ...] --write models/v2.json
 *
 * reads the rows of a replay matrix (npm run replay; open_time_ms, the features, label) instead.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readCandleFile, readFundingFile } from '../src/features/candle-file.js'
import { kFeatureCount, kFeatureNames } from '../src/features/feature-spec.js'
import { replayCandles } from '../src/cli/replay.js'
import { binOf } from '../src/monitoring/drift.js'

const kBins = 10

export function featureReference (columns: Float64Array[], bins = kBins): Record<string, unknown> {
  const features: Record<string, unknown> = {}
  columns.forEach((col, f) => {
    const values = col.filter(v => v === v).sort()
    const n = values.length
    const edges: number[] = []
    for (let i = 1; i < bins; i++) edges.push(n === 0 ? 0 : values[Math.min(n - 1, Math.floor((i * n) / bins))]!)
    const counts = new Array<number>(bins).fill(0)
    for (const v of values) counts[binOf(edges, v)]!++
    features[kFeatureNames[f]!] = {
      edges,
      expected: counts.map(c => (n === 0 ? 0 : Math.round((c / n) * 1e6) / 1e6)),
      nan_share: col.length === 0 ? 0 : Math.round(((col.length - n) / col.length) * 1e6) / 1e6,
    }
  })
  return { bins, features }
}

function main (): void {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string', default: 'data' },
      symbol: { type: 'string', default: 'BNBUSDT' },
      'btc-symbol': { type: 'string', default: 'BTCUSDT' },
      'funding-file': { type: 'string' },
      until: { type: 'string' },
      write: { type: 'string' },
      matrix: { type: 'string' },
    },
  })
  const dir = values['data-dir']!
  const until = values.until === undefined ? Number.POSITIVE_INFINITY : Date.parse(values.until)
  const cols: number[][] = Array.from({ length: kFeatureCount }, () => [])
  if (values.matrix !== undefined) {
    const lines = readFileSync(values.matrix, 'utf8').split('\n')
    const header = `open_time_ms,${kFeatureNames.join(',')},label`
    if (lines[0] !== header) throw new Error(`${values.matrix}: not a replay matrix (header)`)
    for (let i = 1; i < lines.length; i++) {
      if (lines[i]!.length === 0) continue
      const f = lines[i]!.split(',')
      if (Number(f[0]) >= until || f[kFeatureCount + 1] === '') continue
      for (let k = 0; k < kFeatureCount; k++) cols[k]!.push(Number(f[k + 1]))
    }
  } else {
    const candles = readCandleFile(join(dir, `${values.symbol!}-1m.csv.gz`))
    const btc = readCandleFile(join(dir, `${values['btc-symbol']!}-1m.csv.gz`))
    const funding = values['funding-file'] === undefined ? null : readFundingFile(values['funding-file'])
    replayCandles({ candles, btc, funding, barMs: 60_000, maxGapBars: 5 }, (t, row) => {
      if (t >= until) return
      for (let k = 0; k < kFeatureCount; k++) cols[k]!.push(row[k]!)
    })
  }
  const ref = featureReference(cols.map(c => Float64Array.from(c)))
  const text = JSON.stringify(ref)
  process.stderr.write(`feature_reference from ${cols[0]!.length} rows\n`)
  if (values.write === undefined) { process.stdout.write(text + '\n'); return }
  let file = readFileSync(values.write, 'utf8')
  const at = file.indexOf(',\n  "feature_reference":')
  if (at >= 0) file = file.slice(0, at) + '\n}\n'
  const end = file.lastIndexOf('}')
  file = file.slice(0, end).replace(/\s*$/, '') + `,\n  "feature_reference": ${text}\n}\n`
  JSON.parse(file)
  writeFileSync(values.write, file)
}

main()
