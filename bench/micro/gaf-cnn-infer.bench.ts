/**
 * Per-row inference cost of a windowed (GAF-CNN) member in onnxruntime-node, one intra-op thread
 * as in the pool's workers, at batch 1 and batch 64 (and the tree model for scale). Inputs are real
 * GAF tensors built by src/features/window-input.ts from random-walk closes. One session.run in
 * flight at a time; reports process CPU time per row (the cores are shared, so wall time counts
 * waiting for a core) and wall time, median of the runs.
 *
 *   npx tsx bench/micro/gaf-cnn-infer.bench.ts [--model models/gaf_cnn_phase2_v1.onnx] [--seconds 3] [--runs 3]
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { parseInputSpec, WindowInputWriter, type WindowedInputSpec } from '../../src/features/window-input.js'

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/gaf_cnn_phase2_v1.onnx' },
    tree: { type: 'string', default: 'models/xgboost_phase1_v1.onnx' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
  },
})
const kSeconds = Number(args.seconds)
const kRuns = Number(args.runs)
const kBatches = [1, 64]

async function measure (path: string, inputName: string, dims: number[], fill: (data: Float32Array, rows: number) => void): Promise<void> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const rowLength = dims.reduce((a, b) => a * b, 1)
  for (const batch of kBatches) {
    const data = new Float32Array(batch * rowLength)
    fill(data, batch)
    const feeds = { [inputName]: new ort.Tensor('float32', data, [batch, ...dims]) }
    for (let i = 0; i < 20; i++) await session.run(feeds) // warm-up
    const cpu: number[] = []
    const wall: number[] = []
    for (let r = 0; r < kRuns; r++) {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      let rows = 0
      // bounded in time: as many runs as fit in kSeconds
      while (performance.now() - t0 < kSeconds * 1000) { await session.run(feeds); rows += batch }
      const c = process.cpuUsage(c0)
      wall.push(((performance.now() - t0) * 1000) / rows)
      cpu.push((c.user + c.system) / rows)
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    process.stdout.write(`${path} batch ${String(batch).padStart(2)}: ${median(cpu).toFixed(1)} us CPU per row, ` +
      `${median(wall).toFixed(1)} us wall per row (runs: ${cpu.map(v => v.toFixed(1)).join(', ')} us CPU)\n`)
  }
  await session.release()
}

const metadata = JSON.parse(readFileSync(args.model!.replace(/\.onnx$/, '.json'), 'utf8')) as { input: unknown, input_name: string }
const spec = parseInputSpec(metadata.input) as WindowedInputSpec
const writer = new WindowInputWriter(spec)
let seed = 11
const random = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296 }
const walk = (n: number, start: number): Float64Array => {
  const out = new Float64Array(n)
  let p = start
  for (let i = 0; i < n; i++) { p *= Math.exp((random() - 0.5) * 0.004); out[i] = p }
  return out
}
process.stdout.write(`onnxruntime-node, intraOpNumThreads 1, node ${process.version}, ${kRuns} runs of ${kSeconds} s each\n`)
await measure(args.model!, metadata.input_name, [spec.channels.length, spec.window, spec.window], (data, rows) => {
  for (let i = 0; i < rows; i++) writer.write(walk(spec.window, 300), walk(spec.window, 60_000), data, i * writer.rowLength)
})
await measure(args.tree!, 'features', [kFeatureCount], (data) => { for (let i = 0; i < data.length; i++) data[i] = random() - 0.5 })
