/**
 * The committed GAF-CNN member (models/gaf_cnn_phase2_v1.onnx) reproduces PyTorch, from closes to
 * probabilities, through the serving code.
 *
 * training/train_gaf_cnn.py writes golden rows from the test split: the closes (symbol and BTC) each
 * row's window was built from, the sha256 of the float32 tensor the TS replay wrote for it, and
 * PyTorch's P(up) on that tensor. Here the serving writer (src/features/window-input.ts) builds the
 * tensor from the closes, which must be bit for bit the replay's (same code, no training/serving
 * skew), and onnxruntime-node must give PyTorch's probabilities within 1e-5, in one batch and row by
 * row. The metadata's input declaration must agree with the ONNX input (checkInputShape).
 *
 * GAF_GOLDEN_MODEL=path/to/model.onnx checks a retrained member the same way.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import * as ort from 'onnxruntime-node'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { checkInputShape, parseInputSpec, WindowInputWriter, type WindowedInputSpec } from '../../src/features/window-input.js'

const kModelPath = process.env.GAF_GOLDEN_MODEL
  ? resolve(process.env.GAF_GOLDEN_MODEL)
  : fileURLToPath(new URL('../../models/gaf_cnn_phase2_v1.onnx', import.meta.url))
const kTolerance = 1e-5

interface Golden {
  model_version: string
  input: unknown
  open_time_ms: number[]
  closes: number[][]
  btc_closes: Array<number[] | null>
  tensor_sha256: string[]
  probabilities: number[]
}

const golden = JSON.parse(readFileSync(kModelPath.replace(/\.onnx$/, '.golden.json'), 'utf8')) as Golden
const metadata = JSON.parse(readFileSync(kModelPath.replace(/\.onnx$/, '.json'), 'utf8')) as Record<string, unknown>
const spec = parseInputSpec(metadata.input) as WindowedInputSpec
const writer = new WindowInputWriter(spec)
const R = golden.probabilities.length

/** All golden rows' tensors, built by the serving writer from the closes. */
function buildTensors (t: Test): Float32Array {
  const data = new Float32Array(R * writer.rowLength)
  for (let i = 0; i < R; i++) {
    const closes = Float64Array.from(golden.closes[i]!)
    const btc = golden.btc_closes[i] === null ? null : Float64Array.from(golden.btc_closes[i]!)
    if (!writer.write(closes, btc, data, i * writer.rowLength)) t.fail(`row ${i}: window incomplete`)
  }
  return data
}

t.test('metadata and golden file', async t => {
  t.equal(metadata.format, 'onnx')
  t.equal(metadata.model_file, basename(kModelPath))
  t.equal(metadata.positive_class_index, 1)
  t.equal(spec.kind, 'gaf')
  t.same(golden.input, metadata.input, 'the golden rows were built for the declared input')
  t.equal(golden.model_version, metadata.model_version)
  t.ok(R >= 16, 'enough golden rows')
  for (const key of ['open_time_ms', 'closes', 'btc_closes', 'tensor_sha256'] as const) t.equal(golden[key].length, R, `${key} per row`)
  t.ok(golden.closes.every(c => c.length === spec.window), `every row has ${spec.window} closes`)
  t.ok(golden.probabilities.some(p => p > 0.5) && golden.probabilities.some(p => p < 0.5), 'rows on both sides of 0.5')
})

t.test('the serving writer rebuilds the replay tensors bit for bit', async t => {
  const data = buildTensors(t)
  for (let i = 0; i < R; i++) {
    const row = data.subarray(i * writer.rowLength, (i + 1) * writer.rowLength)
    const hash = createHash('sha256').update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength)).digest('hex')
    t.equal(hash, golden.tensor_sha256[i], `row ${i} (${new Date(golden.open_time_ms[i]!).toISOString()})`)
  }
})

t.test('onnxruntime-node reproduces PyTorch on the golden rows', async t => {
  const session = await ort.InferenceSession.create(kModelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  t.teardown(() => session.release())
  const inputName = metadata.input_name as string
  const outputName = metadata.output_name as string
  const dims = [spec.channels.length, spec.window, spec.window]

  t.test('input declaration matches the ONNX input', async t => {
    t.same(session.inputNames, [inputName])
    const input = session.inputMetadata[0]
    t.ok(input?.isTensor === true && input.type === 'float32', 'a float32 tensor')
    if (input?.isTensor === true) t.equal(checkInputShape(spec, input.shape, kFeatureCount), null, `shape [${input.shape.join(', ')}]`)
    t.ok(session.outputNames.includes(outputName))
  })

  async function run (data: Float32Array, n: number): Promise<Float32Array> {
    const out = await session.run({ [inputName]: new ort.Tensor('float32', data, [n, ...dims]) }, [outputName])
    const p = out[outputName] as ort.Tensor
    t.same(p.dims, [n, 2], 'probabilities are [batch, 2]')
    t.equal(p.type, 'float32')
    return p.data as Float32Array
  }

  const data = buildTensors(t)
  t.test('one batch', async t => {
    const p = await run(data, R)
    let worst = 0
    for (let i = 0; i < R; i++) {
      const diff = Math.abs(p[2 * i + 1]! - golden.probabilities[i]!)
      worst = Math.max(worst, diff)
      if (diff > kTolerance) t.fail(`row ${i}: onnx ${p[2 * i + 1]}, pytorch ${golden.probabilities[i]}`)
      if (Math.abs(p[2 * i]! + p[2 * i + 1]! - 1) > kTolerance) t.fail(`row ${i}: probabilities do not sum to 1`)
    }
    t.ok(worst <= kTolerance, `max |onnx - pytorch| = ${worst.toExponential(2)} <= ${kTolerance}`)
  })
  t.test('row by row', async t => {
    for (let i = 0; i < R; i += 4) {
      const p = await run(data.slice(i * writer.rowLength, (i + 1) * writer.rowLength), 1)
      t.ok(Math.abs(p[1]! - golden.probabilities[i]!) <= kTolerance, `row ${i}: onnx ${p[1]}, pytorch ${golden.probabilities[i]}`)
    }
  })
})
