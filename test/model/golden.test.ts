/**
 * The committed ONNX model reproduces XGBoost's own probabilities.
 *
 * training/train.py writes, beside each model it exports, a golden file of rows from the
 * test split (plus rows with NaN features, features exactly at and just below split thresholds,
 * all-NaN and extreme rows) with the probability of class 1 that XGBoost itself predicted (after the
 * Platt scaling, for a calibrated model). Here
 * onnxruntime-node, the runtime the server uses, must give the same numbers, in one batch and row
 * by row. This is what proves the hand-written export (training/xgb_to_onnx.py) correct.
 *
 * Both shipped tree models by default: the default one (model_path's schema default,
 * xgboost_phase1_v2_calibrated) and xgboost_phase1_v1, kept for comparison.
 * GOLDEN_MODEL=path/to/model.onnx checks a retrained one the same way (training/README.md, step 4), with its .json and
 * .golden.json beside it.
 */
import { readFileSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import * as ort from 'onnxruntime-node'
import { kSettings } from '../../src/config/schema.js'
import { kFeatureNames, kFeatureSetVersion } from '../../src/features/feature-spec.js'

const kRepoRoot = fileURLToPath(new URL('../../', import.meta.url))
const kDefaultModel = resolve(kRepoRoot, kSettings.model_path.default)
const kV1Model = resolve(kRepoRoot, 'models/xgboost_phase1_v1.onnx')
const kModelPaths = process.env.GOLDEN_MODEL
  ? [resolve(process.env.GOLDEN_MODEL)]
  : [...new Set([kDefaultModel, kV1Model])]
const kTolerance = 1e-5

interface Golden {
  model_version: string
  feature_names: string[]
  rows: Array<Array<number | null>>
  probabilities: number[]
  row_kinds?: string[]
}

interface Metadata {
  model_version: string
  format: string
  model_file: string
  feature_set_version: string
  feature_names: string[]
  n_features: number
  input_name: string
  output_name: string
  positive_class_index: number
}

const F = kFeatureNames.length

/** Golden rows as one row-major float32 buffer; null (JSON has no NaN) becomes NaN. */
function toFloat32 (rows: ReadonlyArray<ReadonlyArray<number | null>>): Float32Array {
  const data = new Float32Array(rows.length * F)
  rows.forEach((row, i) => {
    row.forEach((value, j) => { data[i * F + j] = value === null ? Number.NaN : value })
  })
  return data
}

if (!process.env.GOLDEN_MODEL) {
  t.test('the shipped default model is one of the models checked here', async t => {
    t.equal(basename(kDefaultModel), 'xgboost_phase1_v2_calibrated.onnx', 'model_path defaults to the calibrated v2')
    t.equal(kModelPaths.length, 2, 'and v1, kept for comparison, is checked too')
  })
}

for (const modelPath of kModelPaths) {
  t.test(basename(modelPath), async t => { await checkModel(t, modelPath) })
}

async function checkModel (t: Test, modelPath: string): Promise<void> {
  const golden = JSON.parse(readFileSync(modelPath.replace(/\.onnx$/, '.golden.json'), 'utf8')) as Golden
  const metadata = JSON.parse(readFileSync(modelPath.replace(/\.onnx$/, '.json'), 'utf8')) as Metadata

  async function probabilitiesOf (session: ort.InferenceSession, data: Float32Array, n: number): Promise<Float32Array> {
    const out = await session.run({ [metadata.input_name]: new ort.Tensor('float32', data, [n, F]) }, [metadata.output_name])
    const tensor = out[metadata.output_name] as ort.Tensor
    if (tensor.dims.length !== 2 || tensor.dims[0] !== n || tensor.dims[1] !== 2) {
      throw new Error(`probabilities have dims [${tensor.dims.join(', ')}], expected [${n}, 2]`)
    }
    return tensor.data as Float32Array
  }

  function describeRow (i: number): string {
    return `row ${i} (${golden.row_kinds?.[i] ?? 'row'})`
  }

  t.test('golden file and metadata agree with the feature spec', async t => {
    t.same(metadata.feature_names, kFeatureNames, 'metadata feature_names are kFeatureNames, in order')
    t.equal(metadata.n_features, F)
    t.equal(metadata.feature_set_version, kFeatureSetVersion)
    t.equal(metadata.format, 'onnx')
    t.equal(metadata.model_file, basename(modelPath))
    t.equal(metadata.positive_class_index, 1)
    t.same(golden.feature_names, kFeatureNames, 'golden feature_names are kFeatureNames, in order')
    t.equal(golden.model_version, metadata.model_version)
    t.equal(golden.rows.length, golden.probabilities.length)
    t.ok(golden.rows.length >= 32, 'enough golden rows')
    t.ok(golden.rows.every(row => row.length === F), `every golden row has ${F} values`)
    t.ok(golden.rows.some(row => row.some(v => v === null)), 'some golden rows have missing features')
    t.ok(golden.rows.some(row => row.every(v => v === null)), 'one golden row is all missing')
  })

  t.test('onnxruntime-node reproduces XGBoost on the golden rows', async t => {
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
    t.teardown(() => session.release())

    t.test('input and output names match the metadata', async t => {
      t.same(session.inputNames, [metadata.input_name])
      t.ok(session.outputNames.includes(metadata.output_name), `outputs include ${metadata.output_name}`)
      const input = session.inputMetadata[0]
      t.ok(input?.isTensor, 'the input is a tensor')
      if (input?.isTensor === true) {
        t.equal(input.type, 'float32')
        t.equal(input.shape.length, 2)
        t.equal(input.shape[1], F, `the input has ${F} columns`)
        t.type(input.shape[0], 'string', 'the batch dimension is symbolic')
      }
    })

    t.test('all golden rows in one batch', async t => {
      const n = golden.rows.length
      const p = await probabilitiesOf(session, toFloat32(golden.rows), n)
      let worst = 0
      for (let i = 0; i < n; i++) {
        const up = p[2 * i + 1]!
        const diff = Math.abs(up - golden.probabilities[i]!)
        worst = Math.max(worst, diff)
        if (diff > kTolerance) t.fail(`${describeRow(i)}: onnx ${up}, xgboost ${golden.probabilities[i]}`)
        if (Math.abs(p[2 * i]! + up - 1) > kTolerance) t.fail(`${describeRow(i)}: probabilities do not sum to 1`)
      }
      t.ok(worst <= kTolerance, `max |onnx - xgboost| = ${worst.toExponential(2)} <= ${kTolerance}`)
    })

    t.test('row by row gives the same as the batch', async t => {
      // a few rows of each kind: plain, with NaN, at a threshold, all-NaN, extreme
      const picks = new Set<number>()
      const kinds = golden.row_kinds ?? []
      for (const kind of new Set(kinds)) picks.add(kinds.indexOf(kind))
      for (let i = 0; i < Math.min(4, golden.rows.length); i++) picks.add(i)
      for (const i of picks) {
        const p = await probabilitiesOf(session, toFloat32([golden.rows[i]!]), 1)
        t.ok(Math.abs(p[1]! - golden.probabilities[i]!) <= kTolerance,
          `${describeRow(i)}: onnx ${p[1]}, xgboost ${golden.probabilities[i]}`)
      }
    })
  })
}
