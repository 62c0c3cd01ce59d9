/**
 * The model-only floor: onnxruntime-node `session.run` in this process, no HTTP, no worker hop,
 * per batch size (issue 3: "report the model-only floor beside the server's figures"). The session
 * is opened exactly as an inference worker opens it (src/pool/inference-worker.ts: one intra-op
 * thread, sequential, all graph optimisations), with the input and output names from the model's
 * metadata, and fed real feature rows from the model's golden file (NaN where the data had none),
 * so the trees take the paths real requests take.
 *
 * Each size: a warm-up fifth of the budget, then awaited runs until the budget ends; every call's
 * time goes into an hdr histogram in integer µs.
 */

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { readModelMetadata } from '../../src/model/model-metadata.js'
import { createHistogram, summarize, type LatencySummary } from './histogram.js'

export interface FloorResult {
  readonly batchSize: number
  readonly calls: number
  /** Time of one awaited session.run, µs. */
  readonly callUs: LatencySummary
  /** Median call time divided by the batch size, µs. */
  readonly perRowUsP50: number | null
  /** Rows per second over the measured budget, one session, one thread. */
  readonly rowsPerSec: number
}

export interface FloorReport {
  readonly modelPath: string
  readonly modelVersion: string
  readonly inputName: string
  readonly outputName: string
  readonly features: number
  readonly rowsFrom: string
  readonly results: readonly FloorResult[]
}

export async function measureModelFloor (modelPath: string, batchSizes: readonly number[], budgetMsPerSize: number): Promise<FloorReport> {
  const meta = await readModelMetadata(modelPath)
  const features = meta.feature_names.length
  const rows = goldenRows(modelPath, meta.golden_file, features)
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  })
  const results: FloorResult[] = []
  try {
    for (const batch of batchSizes) {
      const input = new Float32Array(batch * features)
      for (let r = 0; r < batch; r++) input.set(rows.values[r % rows.count]!, r * features)
      const feeds = { [meta.input_name]: new ort.Tensor('float32', input, [batch, features]) }
      const fetches = [meta.output_name]
      const warmEnd = performance.now() + budgetMsPerSize / 5
      while (performance.now() < warmEnd) await session.run(feeds, fetches)
      const histogram = createHistogram()
      const start = performance.now()
      const end = start + (budgetMsPerSize * 4) / 5
      let calls = 0
      let now = start
      while (now < end) {
        const t = performance.now()
        await session.run(feeds, fetches)
        now = performance.now()
        histogram.recordValue(Math.round((now - t) * 1000))
        calls++
      }
      const summary = summarize(histogram)
      results.push({
        batchSize: batch,
        calls,
        callUs: summary,
        perRowUsP50: summary.p50 === null ? null : Math.round((summary.p50 / batch) * 100) / 100,
        rowsPerSec: Math.round((calls * batch) / ((now - start) / 1000)),
      })
    }
  } finally {
    await session.release()
  }
  return {
    modelPath,
    modelVersion: meta.model_version,
    inputName: meta.input_name,
    outputName: meta.output_name,
    features,
    rowsFrom: rows.source,
    results,
  }
}

function goldenRows (modelPath: string, goldenFile: unknown, features: number): { values: Float32Array[], count: number, source: string } {
  const path = typeof goldenFile === 'string' ? join(dirname(modelPath), goldenFile) : null
  if (path !== null && existsSync(path)) {
    const golden = JSON.parse(readFileSync(path, 'utf8')) as { rows?: Array<Array<number | null>> }
    const values = (golden.rows ?? [])
      .filter((row) => row.length === features)
      // null in the golden file is a missing feature (NaN), as the server feeds it.
      .map((row) => Float32Array.from(row, (v) => (v === null ? Number.NaN : v)))
    if (values.length > 0) return { values, count: values.length, source: `${values.length} rows of ${goldenFile}` }
  }
  return { values: [new Float32Array(features).fill(Number.NaN)], count: 1, source: 'one all-NaN row (no golden file)' }
}
