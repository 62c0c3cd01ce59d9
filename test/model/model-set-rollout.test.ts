/**
 * Rolling a model set out as a model is (issue 14): over POST /admin/reload by file name in the
 * models folder, refused with 422 naming the member when broken (the serving set stays), and by
 * watch_models when a MEMBER's file changes, not only the set file.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { copyShippedModels } from '../helpers/model-fixtures.js'
import { postJson, startServer } from '../helpers/start-server.js'

const kModels = fileURLToPath(new URL('../../models/', import.meta.url))
const kToken = 'set-rollout-token-0123456789'
const kStems = ['xgboost_phase1_v2_calibrated', 'gaf_cnn_phase2_v1']
const kBody = { price: 600.5, volume: 10, btc_price: 95_000, symbol: 'ROLL' }

/** A models folder with copies of both members and a set file of them. */
function modelsFolder (dir: string): string {
  copyShippedModels(dir, kStems)
  const set = JSON.parse(readFileSync(join(kModels, 'ensemble_phase2_v1.set.json'), 'utf8'))
  writeFileSync(join(dir, 'ensemble.set.json'), JSON.stringify(set))
  writeFileSync(join(dir, 'broken.set.json'), JSON.stringify({ ...set, members: [set.members[0], { model: 'gaf_cnn_phase2_v1.onnx', weight: -0.3 }] }))
  return dir
}

async function admin (url: string, body: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(`${url}/admin/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${kToken}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  })
  return { status: res.status, body: await res.json() }
}

t.test('POST /admin/reload takes a set file by name; a broken one is a 422 naming the member', async (t) => {
  const dir = modelsFolder(t.testdir({}))
  const { url } = await startServer(t, { model_path: join(dir, kStems[0] + '.onnx'), admin_token: kToken, workers: 1 })
  const toSet = await admin(url, { model_path: 'ensemble.set.json' })
  t.equal(toSet.status, 200, JSON.stringify(toSet.body))
  t.match(toSet.body, { status: 'ok', model_version: 'ensemble_phase2_v1', previous_version: 'xgboost_phase1_v2_calibrated' })
  t.equal((await postJson(`${url}/predict`, kBody)).body.model_version, 'ensemble_phase2_v1')
  const broken = await admin(url, { model_path: 'broken.set.json' })
  t.equal(broken.status, 422)
  t.match(broken.body, { code: 'ERR_MODEL_LOAD', model_version: 'ensemble_phase2_v1' })
  t.match(broken.body.detail, /member gaf_cnn_phase2_v1\.onnx: weight must be a finite number > 0, got -0\.3/)
  t.equal((await postJson(`${url}/predict`, kBody)).body.model_version, 'ensemble_phase2_v1', 'the set keeps serving')
  const outside = await admin(url, { model_path: '../ensemble.set.json' })
  t.equal(outside.status, 422, 'only files of the models folder')
  t.match(outside.body.detail, /models folder/)
})

t.test('watch_models reloads a set when one of its members changes', async (t) => {
  const dir = modelsFolder(t.testdir({}))
  const { url } = await startServer(t, { model_path: join(dir, 'ensemble.set.json'), watch_models: true, workers: 1 })
  const before = await postJson(`${url}/predict`, kBody)
  t.equal(before.body.components[1].model_version, 'gaf_cnn_phase2_v1')
  // A retrained CNN published in place: metadata written beside, then renamed over (atomic).
  const meta = JSON.parse(readFileSync(join(dir, 'gaf_cnn_phase2_v1.json'), 'utf8'))
  writeFileSync(join(dir, 'gaf_cnn_phase2_v1.json.tmp'), JSON.stringify({ ...meta, model_version: 'gaf_cnn_phase2_v2' }))
  renameSync(join(dir, 'gaf_cnn_phase2_v1.json.tmp'), join(dir, 'gaf_cnn_phase2_v1.json'))
  let version = ''
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && version !== 'gaf_cnn_phase2_v2') {
    await new Promise(resolve => setTimeout(resolve, 100))
    version = (await postJson(`${url}/predict`, { ...kBody, price: 600.6 })).body.components?.[1]?.model_version
  }
  t.equal(version, 'gaf_cnn_phase2_v2', 'the set was reloaded with the new member')
})
