/**
 * Model sets at load (issue 14): a set that cannot serve is refused with a message naming the
 * member and what differs, and a refused set, offered as a reload, leaves the serving one in
 * place. One real server serves the shipped example set throughout; each case writes a broken
 * copy of it (the member files copied beside it) and asks the server to load it.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { copyShippedModels } from '../helpers/model-fixtures.js'
import { postJson, startServer } from '../helpers/start-server.js'

const kModels = fileURLToPath(new URL('../../models/', import.meta.url))
const kTree = 'xgboost_phase1_v2_calibrated'
const kCnn = 'gaf_cnn_phase2_v1'
const kShippedSet = join(kModels, 'ensemble_phase2_v1.set.json')

const good = (): Record<string, any> => JSON.parse(readFileSync(kShippedSet, 'utf8'))

/** A folder holding copies of both members, with their metadata edited by `edit` (file stem -> metadata). */
function folder (t: Test, edit: Record<string, (meta: any) => void> = {}): string {
  const dir = t.testdir({})
  copyShippedModels(dir, [kTree, kCnn], edit)
  return dir
}

function writeSet (dir: string, set: unknown, name = 'candidate.set.json'): string {
  const path = join(dir, name)
  writeFileSync(path, typeof set === 'string' ? set : JSON.stringify(set))
  return path
}

t.test('a set that cannot serve is refused naming the member; the serving set keeps answering', async (t) => {
  const { server, url } = await startServer(t, { model_path: kShippedSet, workers: 1 })
  const body = { price: 600.5, volume: 10, btc_price: 95_000, symbol: 'LOADTEST' }
  const before = await postJson(`${url}/predict`, body)
  t.equal(before.status, 200)
  t.equal(before.body.model_version, 'ensemble_phase2_v1', 'the shipped example set serves')

  const cases: Array<{ name: string, set?: unknown, edit?: Record<string, (meta: any) => void>, code: string, says: RegExp[] }> = [
    {
      name: 'a missing member file',
      set: { ...good(), members: [good().members[0], { model: 'gaf_cnn_phase3.onnx', weight: 0.3 }] },
      code: 'ERR_MODEL_LOAD',
      says: [/member gaf_cnn_phase3\.onnx/, /gaf_cnn_phase3\.onnx/],
    },
    ...([0, -1, '0.3', null, 1e999] as unknown[]).map(weight => ({
      name: `weight ${JSON.stringify(weight)}`,
      set: weight === 1e999
        ? JSON.stringify({ ...good(), members: [good().members[0], { model: `${kCnn}.onnx`, weight: 7 }] }).replace('"weight":7', '"weight":1e999')
        : { ...good(), members: [good().members[0], { model: `${kCnn}.onnx`, weight }] },
      code: 'ERR_MODEL_LOAD',
      says: [new RegExp(`member ${kCnn}\\.onnx: weight must be a finite number > 0`)],
    })),
    {
      name: 'a member whose input shape does not match its declared window',
      edit: { [kCnn]: (meta) => { meta.input.window = 16 } },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [new RegExp(`member ${kCnn}\\.onnx`), /\[batch, 3, 32, 32\]/, /\[batch, 3, 16, 16\]/],
    },
    {
      name: 'a member whose declared channels differ from its feature names',
      edit: { [kCnn]: (meta) => { meta.feature_names = ['gasf_close', 'gasf_btc', 'gadf_close'] } },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [new RegExp(`member ${kCnn}`), /differ from its input channels/],
    },
    {
      name: 'a tabular member on another feature list (two features swapped)',
      edit: { [kTree]: (meta) => { [meta.feature_names[3], meta.feature_names[4]] = [meta.feature_names[4], meta.feature_names[3]] } },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [new RegExp(`member ${kTree}`), /feature 3 is "ret_60", the server computes "ret_15"/],
    },
    {
      name: 'a tabular member on another feature set version',
      edit: { [kTree]: (meta) => { meta.feature_set_version = 'bars-v2' } },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [new RegExp(`member ${kTree}`), /"bars-v2"/, /"bars-v1"/],
    },
    {
      name: 'members trained on different bar lengths',
      edit: { [kCnn]: (meta) => { meta.bar_ms = 300_000 } },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [new RegExp(`member ${kCnn}`), /300000 ms bars/],
    },
    {
      name: 'a set without a tabular member',
      set: { ...good(), members: [{ model: `${kCnn}.onnx`, weight: 1 }] },
      code: 'ERR_MODEL_INCOMPATIBLE',
      says: [/no tabular member/],
    },
    {
      name: 'a member listed twice',
      set: { ...good(), members: [...good().members, { model: `${kTree}.onnx`, weight: 1 }] },
      code: 'ERR_MODEL_LOAD',
      says: [new RegExp(`member ${kTree}\\.onnx is listed twice`)],
    },
    {
      name: 'a member outside the set\'s folder',
      set: { ...good(), members: [{ model: `../models/${kTree}.onnx`, weight: 1 }] },
      code: 'ERR_MODEL_LOAD',
      says: [/member 1: model must be an \.onnx file name in the set's folder/],
    },
    {
      name: 'a misspelt member field',
      set: { ...good(), members: [{ model: `${kTree}.onnx`, wieght: 1 }] },
      code: 'ERR_MODEL_LOAD',
      says: [/unknown field\(s\) wieght/],
    },
    { name: 'no members', set: { ...good(), members: [] }, code: 'ERR_MODEL_LOAD', says: [/members must be a non-empty array/] },
    { name: 'an unknown combiner', set: { ...good(), combiner: 'median' }, code: 'ERR_MODEL_LOAD', says: [/combiner must be "weighted_mean"/] },
    { name: 'a set file that is not JSON', set: '{"set_version": ', code: 'ERR_MODEL_LOAD', says: [/is not valid JSON/] },
    {
      name: 'member workers out of range',
      set: { ...good(), members: [{ model: `${kTree}.onnx`, weight: 1, workers: 0 }] },
      code: 'ERR_MODEL_LOAD',
      says: [/workers must be an integer in \[1, 64\]/],
    },
  ]

  for (const c of cases) {
    const dir = folder(t, c.edit)
    const path = writeSet(dir, c.set ?? good())
    const outcome = await server.reloadModel(path, 'test')
    t.equal(outcome.ok, false, `${c.name}: refused`)
    if (outcome.ok) continue
    t.equal(outcome.code, c.code, `${c.name}: ${c.code}`)
    for (const re of c.says) t.match(outcome.error, re, `${c.name}: the message says ${re}`)
    t.equal(outcome.model_version, 'ensemble_phase2_v1', `${c.name}: the serving set is kept`)
  }

  const after = await postJson(`${url}/predict`, { ...body, price: 600.6 })
  t.equal(after.status, 200, 'still serving after every refusal')
  t.equal(after.body.model_version, 'ensemble_phase2_v1')

  // The unedited copies load: each case above failed for its own edit alone.
  const dir = folder(t)
  const ok = await server.reloadModel(writeSet(dir, { ...good(), set_version: 'ensemble_copy' }), 'test')
  t.equal(ok.ok, true, 'the unedited copy loads')
  const swapped = await postJson(`${url}/predict`, { ...body, price: 600.7 })
  t.equal(swapped.body.model_version, 'ensemble_copy', 'and serves')
})

t.test('a windowed model alone is refused: it cannot answer a symbol without history', async (t) => {
  const { server } = await startServer(t, { workers: 1 })
  const outcome = await server.reloadModel(join(kModels, `${kCnn}.onnx`), 'test')
  t.equal(outcome.ok, false)
  if (outcome.ok) return
  t.equal(outcome.code, 'ERR_MODEL_INCOMPATIBLE')
  t.match(outcome.error, /serves only as a member of a model set/)
  t.equal(outcome.model_version, 'xgboost_phase1_v2_calibrated', 'the tree model keeps serving')
})

t.test('worker_transport=message cannot serve a set, and says so', async (t) => {
  const { server } = await startServer(t, { workers: 1, worker_transport: 'message' })
  const outcome = await server.reloadModel(kShippedSet, 'test')
  t.equal(outcome.ok, false)
  if (!outcome.ok) t.match(outcome.error, /worker_transport=message cannot serve a set/)
})

t.test('a member without workers runs one, whatever the server\'s workers; the set file\'s count otherwise', async (t) => {
  const dir = folder(t)
  const path = writeSet(dir, { ...good(), members: [{ model: `${kTree}.onnx`, weight: 0.7 }, { model: `${kCnn}.onnx`, weight: 0.3, workers: 2 }] })
  const { url } = await startServer(t, { model_path: path, workers: 3 })
  const res = await fetch(`${url}/metrics?format=json`).then(r => r.json()) as any
  t.same(res.model_set.members.map((m: any) => m.workers), [1, 2], 'tree 1 (default), CNN 2 (declared); not 3 each')
  t.equal(res.workers, 2, 'batches in flight: the widest member\'s pool')
})
