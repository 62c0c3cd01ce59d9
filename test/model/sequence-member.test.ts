/**
 * A `sequence` member ([channels, N] input, for 1-D models) served in a set (issue 14). No such
 * model ships, so the test builds a small one with Debian's python3-onnx: flatten, one dense layer
 * with known weights, a sigmoid. The server must give, for the member, exactly what that formula
 * gives on the tensor WindowInputWriter builds from the same closes (the writer the training
 * replay uses), and leave the member out until the symbol has N closes.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { WindowInputWriter, type SequenceInputSpec } from '../../src/features/window-input.js'
import { copyShippedModels } from '../helpers/model-fixtures.js'
import { kPython, pythonImports } from '../helpers/python.js'
import { postJson, startServer } from '../helpers/start-server.js'

const kTree = 'xgboost_phase1_v2_calibrated'
const N = 16
const spec: SequenceInputSpec = { kind: 'sequence', window: N, channels: ['close_scaled', 'close_logret'] }
const weight = (k: number): number => ((k % 7) - 3) / 10
const kBias = 0.1

const kBuild = `
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
n, c = ${N}, 2
w = np.array([((k % 7) - 3) / 10 for k in range(c * n)], dtype=np.float32).reshape(c * n, 1)
nodes = [
  helper.make_node('Flatten', ['seq'], ['flat'], axis=1),
  helper.make_node('MatMul', ['flat', 'w'], ['z0']),
  helper.make_node('Add', ['z0', 'b'], ['z']),
  helper.make_node('Sigmoid', ['z'], ['p']),
  helper.make_node('Sub', ['one', 'p'], ['q']),
  helper.make_node('Concat', ['q', 'p'], ['probabilities'], axis=1),
]
graph = helper.make_graph(nodes, 'seq_member',
  [helper.make_tensor_value_info('seq', TensorProto.FLOAT, ['batch', c, n])],
  [helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, ['batch', 2])],
  [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(np.array([${kBias}], dtype=np.float32), 'b'),
   numpy_helper.from_array(np.array([1.0], dtype=np.float32), 'one')])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
`

/** What the member must answer for `closes` (its last N): the formula on the serving writer's tensor. */
function expected (closes: number[]): number {
  const writer = new WindowInputWriter(spec)
  const row = new Float32Array(writer.rowLength)
  if (!writer.write(Float64Array.from(closes), null, row, 0)) throw new Error('window incomplete')
  let z = 0
  for (let k = 0; k < row.length; k++) z += Math.fround(weight(k)) * row[k]!
  z += kBias
  return 1 / (1 + Math.exp(-z))
}

t.test('a sequence member serves the formula on the replay writer\'s tensor', { skip: pythonImports('numpy, onnx') ? false : 'needs python3-onnx and python3-numpy (apt-get install -y python3-onnx python3-numpy)' }, async (t) => {
  const dir = t.testdir({})
  execFileSync(kPython, ['-c', kBuild, join(dir, 'seq_test_v1.onnx')], { timeout: 60_000 })
  writeFileSync(join(dir, 'seq_test_v1.json'), JSON.stringify({
    model_version: 'seq_test_v1',
    feature_set_version: 'window-sequence-v1',
    feature_names: spec.channels,
    input: spec,
    input_name: 'seq',
    output_name: 'probabilities',
    bar_ms: 60_000,
  }))
  copyShippedModels(dir, [kTree])
  const setPath = join(dir, 'seq.set.json')
  writeFileSync(setPath, JSON.stringify({
    set_version: 'seq_set', combiner: 'weighted_mean',
    members: [{ model: `${kTree}.onnx`, weight: 1 }, { model: 'seq_test_v1.onnx', weight: 3 }],
  }))
  const { url } = await startServer(t, { model_path: setPath, workers: 1 })
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 60 * 60_000
  const closes: number[] = []
  for (let j = 0; j < 24; j++) {
    const close = 600 * Math.exp(0.002 * Math.sin(j * 1.7) + 0.0005 * j)
    closes.push(close)
    const res = await postJson(`${url}/predict`, { symbol: 'SEQ', price: close, volume: 10, timestamp_ms: t0 + j * 60_000 + 1_000 })
    t.equal(res.status, 200)
    const [tree, seq] = res.body.components
    if (j < N - 1) {
      t.equal(seq.status, 'no_history', `bar ${j}: ${j + 1} closes, fewer than ${N}`)
      continue
    }
    t.equal(seq.status, 'used', `bar ${j}: the member answers`)
    const want = expected(closes.slice(-N))
    t.ok(Math.abs(seq.probability_long - want) <= 2e-6, `bar ${j}: ${seq.probability_long} vs ${want}`)
    t.ok(Math.abs(res.body.probability_long - (tree.probability_long + 3 * seq.probability_long) / 4) <= 2e-6, 'weighted 1:3')
  }
})
