/**
 * Model files that are not what they claim (issue 10, item 5): a FIFO named as the model or as its
 * metadata, a directory (`model_path: "."`), and a storm of reload requests. Each used to stall or
 * misuse the server: a FIFO hung the event loop inside onnxruntime's synchronous load until a
 * writer appeared, a directory made the server read `<dir>.json` outside the models folder, and
 * 50 SIGHUPs meant 50 loads, one after the other.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configFromSettings, packageRoot } from '../../src/config/load.js'
import type { RawSettings } from '../../src/config/schema.js'
import { createLogger } from '../../src/log/logger.js'
import { PredictionServer } from '../../src/server/app.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kRoot = packageRoot()
const kModel = join(kRoot, 'models', 'xgboost_phase1_v1.onnx')
const kMetadataFile = join(kRoot, 'models', 'xgboost_phase1_v1.json')
const kToken = 'test-admin-token-0123456789'

/** Rejects with the start-up error, or fails the test if the server starts or takes over 20 s. */
async function startError (t: Test, settings: Partial<RawSettings>): Promise<Error & { code?: string }> {
  const config = configFromSettings({ host: '127.0.0.1', port: 0, workers: 1, warmup_runs: 1, log_level: 'silent', ...settings })
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<Error>((resolve) => { timer = setTimeout(() => { resolve(new Error('start-up hung for 20 s')) }, 20_000) })
  try {
    const outcome = await Promise.race([
      PredictionServer.start(config, createLogger('silent', null)).then((server) => {
        t.teardown(() => server.close())
        return new Error('the server started')
      }, (err: unknown) => err as Error),
      hung,
    ])
    return outcome
  } finally {
    clearTimeout(timer)
  }
}

function mkfifo (path: string): void {
  execFileSync('mkfifo', [path])
}

t.test('a FIFO named as the model is refused at once, without waiting for a writer', async (t) => {
  const dir = t.testdir({})
  const path = join(dir, 'fifo.onnx')
  mkfifo(path)
  copyFileSync(kMetadataFile, join(dir, 'fifo.json'))
  const started = Date.now()
  const err = await startError(t, { model_path: path })
  t.equal(err.code, 'ERR_MODEL_LOAD', err.message)
  t.match(err.message, `${path} is not a regular file (a FIFO)`)
  t.ok(Date.now() - started < 10_000, 'refused without waiting')
})

t.test('a FIFO named as the metadata is refused at once', async (t) => {
  const dir = t.testdir({})
  const path = join(dir, 'model.onnx')
  copyFileSync(kModel, path)
  mkfifo(join(dir, 'model.json'))
  const err = await startError(t, { model_path: path })
  t.equal(err.code, 'ERR_MODEL_LOAD', err.message)
  t.match(err.message, 'model.json is not a regular file (a FIFO)')
})

t.test('a directory as model_path is refused before anything beside it is read', async (t) => {
  // <parent>/models is the "model"; <parent>/models.json is what the old loader read as its
  // metadata, a file outside the folder. Give it valid metadata so only the directory check can refuse.
  const parent = t.testdir({})
  const dir = join(parent, 'models')
  mkdirSync(dir)
  copyFileSync(kMetadataFile, join(parent, 'models.json'))
  const err = await startError(t, { model_path: dir })
  t.equal(err.code, 'ERR_MODEL_LOAD', err.message)
  t.match(err.message, 'is not a regular file (a directory)')
})

t.test('over the admin API, "." and a FIFO are refused and the serving model keeps answering', async (t) => {
  const dir = t.testdir({})
  const v1 = join(dir, 'v1.onnx')
  copyFileSync(kModel, v1)
  copyFileSync(kMetadataFile, join(dir, 'v1.json'))
  mkfifo(join(dir, 'pipe.onnx'))
  copyFileSync(kMetadataFile, join(dir, 'pipe.json'))
  const { url } = await startServer(t, { model_path: v1, admin_token: kToken, workers: 1 })
  for (const modelPath of ['.', './', 'pipe.onnx']) {
    const res = await fetch(`${url}/admin/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${kToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model_path: modelPath }),
      signal: AbortSignal.timeout(20_000),
    })
    const body = await res.json() as { code: string, detail: string, model_version: string }
    t.equal(res.status, 422, `${modelPath}: 422`)
    t.equal(body.code, 'ERR_MODEL_LOAD', modelPath)
    t.match(body.detail, /is not a regular file \((a directory|a FIFO)\)/, modelPath)
    t.equal(body.model_version, 'xgboost_phase1_v1', 'the serving model is named as still serving')
  }
  const p = await postJson(`${url}/predict`, { price: 100 })
  t.equal(p.status, 200, 'still serving')
})

t.test('reload requests that arrive while one runs are coalesced: 50 asks, at most 2 loads', async (t) => {
  const { server, url } = await startServer(t, { workers: 1 })
  const before = server.models.reloadsOk + server.models.reloadsFailed
  // As a burst of SIGHUPs does (serve.ts calls reloadModel per signal), all in one turn.
  const outcomes = await Promise.all(Array.from({ length: 50 }, () => server.reloadModel(undefined, 'SIGHUP')))
  t.ok(outcomes.every((o) => o.ok), 'every request is answered with a successful reload')
  const loads = server.models.reloadsOk + server.models.reloadsFailed - before
  t.ok(loads >= 1 && loads <= 2, `${loads} loads for 50 requests`)
  t.equal(server.models.reloadsCoalesced, 50 - loads, 'the rest joined a queued reload')
  const metrics = await getJson(`${url}/metrics`)
  t.equal(metrics.body.model_reloads.coalesced, 50 - loads, '/metrics counts them')
  // A request after the burst (none queued any more) loads again: the newest file is always read.
  await server.reloadModel(undefined, 'SIGHUP')
  t.equal(server.models.reloadsOk + server.models.reloadsFailed - before, loads + 1)
})
