import t from 'tap'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { openBatchSession } from '../../src/pool/batch-session.js'
import { kShippedModel } from '../helpers/model-fixtures.js'
import { prng } from '../helpers/prng.js'

t.test('the native session and the public API give the same probabilities, NaN included', async (t) => {
  const common = { modelPath: kShippedModel, inputName: 'features', outputName: 'probabilities', featureCount: kFeatureCount }
  const native = await openBatchSession(common)
  const pub = await openBatchSession({ ...common, forcePublic: true })
  t.equal(native.kind, 'native', 'onnxruntime-node 1.30 exposes its binding: the worker runs without a setImmediate per batch')
  t.equal(pub.kind, 'public')
  const random = prng(7)
  for (const rows of [1, 3, 64]) {
    const input = new Float32Array(rows * kFeatureCount).map(() => (random() < 0.1 ? Number.NaN : random() * 4 - 2))
    const a = await native.run(input, rows)
    const b = await pub.run(input, rows)
    t.equal(a.length, rows * 2, `${rows} rows: two columns per row`)
    t.same(Array.from(a), Array.from(b), `${rows} rows: identical probabilities`)
  }
})

t.test('a file that is not a model fails to open with onnxruntime\'s message, on both paths', async (t) => {
  const dir = t.testdir({ 'broken.onnx': 'not a model' })
  const options = { modelPath: `${dir}/broken.onnx`, inputName: 'features', outputName: 'probabilities', featureCount: kFeatureCount }
  await t.rejects(openBatchSession(options))
  await t.rejects(openBatchSession({ ...options, forcePublic: true }))
})
