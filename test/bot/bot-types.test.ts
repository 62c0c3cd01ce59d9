/**
 * The server's answers, checked field by field against the bot's serde types (typeof exactly:
 * f64 -> number, String -> string, bool -> boolean; null or absent fails) in every state the bot
 * can meet: fresh, after predictions, during a model reload, in the shutdown grace period, while
 * draining, and with no model. test/bot/rust-bot.test.ts decodes the same states with the real
 * Rust client; this file shows a break even where cargo is absent.
 */
import { join } from 'node:path'
import t from 'tap'
import { InferenceGate } from '../helpers/inference-gate.js'
import { writeModel } from '../helpers/model-fixtures.js'
import { startServer } from '../helpers/start-server.js'
import {
  admin, detailProblems, healthProblems, kAdminToken, keepAliveAgent, predictionProblems, send, until,
} from './bot-helpers.js'

// Five servers, one after another, each waiting on a real drain or reload: on a loaded 2-core CI
// machine the file can outlast the suite's 120 s default.
t.setTimeout(6 * 60_000)

const kFull = {
  price: 625.5, open: 624.2, high: 626.8, low: 623.9, volume: 145230.5, bid_volume: 72500, ask_volume: 68200,
  best_bid: 625.45, best_ask: 625.55, bid_depth_5: 150000, ask_depth_5: 145000, btc_price: 43250, funding_rate: 0.0001,
  symbol: 'WBNBUSDT',
}
// What the bot sends when the order book and candle are unavailable: nulls, and no symbol.
const kSparse = {
  price: 625.5, open: null, high: null, low: null, volume: null, bid_volume: null, ask_volume: null, best_bid: null,
  best_ask: null, bid_depth_5: null, ask_depth_5: null, btc_price: null, funding_rate: null, symbol: null,
}

t.test('fresh server, then after predictions: /health and /predict decode', async (t) => {
  const { url } = await startServer(t)
  const agent = keepAliveAgent(t)
  const fresh = await send(agent, `${url}/health`, 'GET')
  t.equal(fresh.status, 200)
  t.same(healthProblems(fresh.body), [], 'a server that served nothing yet: /health decodes')
  t.equal(fresh.body.avg_latency_ms, 0, 'avg_latency_ms is 0 before the first prediction')
  t.equal(fresh.body.model_version, 'xgboost_phase1_v2_calibrated')
  for (const body of [kFull, kSparse, { price: 612.5 }]) {
    const p = await send(agent, `${url}/predict`, 'POST', body)
    t.equal(p.status, 200)
    t.same(predictionProblems(p.body), [], `prediction decodes (${Object.keys(body).length} fields sent)`)
  }
  const after = await send(agent, `${url}/health`, 'GET')
  t.same(healthProblems(after.body), [], 'after predictions: /health decodes')
  t.ok(after.body.avg_latency_ms > 0, `avg_latency_ms ${after.body.avg_latency_ms as number} > 0 after predictions`)
})

t.test('every error answer of the predict routes carries a decodable detail', async (t) => {
  const { url } = await startServer(t, { max_body_bytes: 1024 })
  const agent = keepAliveAgent(t)
  const cases: Array<[string, 'GET' | 'POST', unknown, number]> = [
    ['/predict', 'POST', 'not json', 400],
    ['/predict', 'POST', { price: -1 }, 422],
    ['/predict', 'POST', { price: 'x', symbol: '??' }, 422],
    ['/predict', 'GET', undefined, 405],
    ['/nowhere', 'GET', undefined, 404],
    ['/predict', 'POST', { price: 1, pad: 'x'.repeat(2000) }, 413],
  ]
  for (const [path, method, body, status] of cases) {
    // 413 closes the connection: a fresh agent for it so the others keep theirs.
    const a = status === 413 ? keepAliveAgent(t) : agent
    const r = await send(a, `${url}${path}`, method, body)
    t.equal(r.status, status, `${method} ${path} -> ${status}`)
    t.same(detailProblems(r.body), [], `${status}: detail decodes`)
  }
})

t.test('during a model reload every answer decodes, from one version or the other', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'types_v1' })
  writeModel(dir, 'candidate', { model_version: 'types_v2' })
  const { url } = await startServer(t, { model_path: v1, admin_token: kAdminToken })
  const agent = keepAliveAgent(t)
  let reloaded = false
  const reload = admin(url, 'reload', { model_path: 'candidate.onnx' }).finally(() => { reloaded = true })
  const versions = new Set<string>()
  const bad: string[] = []
  let answers = 0
  // Bounded: the reload's own time (a loaded machine may need seconds), at most 60 s.
  const deadline = Date.now() + 60_000
  while (!reloaded && Date.now() < deadline) {
    const h = await send(agent, `${url}/health`, 'GET')
    const p = await send(agent, `${url}/predict`, 'POST', kFull)
    answers += 2
    bad.push(...healthProblems(h.body).map(m => `health ${h.status}: ${m}`), ...predictionProblems(p.body).map(m => `predict ${p.status}: ${m}`))
    versions.add(h.body.model_version).add(p.body.model_version)
    // Paced: the point is answers across the reload, not load on the loading thread.
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  const outcome = await reload
  t.equal(outcome.status, 200, 'reload succeeded')
  t.same(bad, [], `${answers} answers during the reload all decode`)
  t.ok([...versions].every(v => v === 'types_v1' || v === 'types_v2'), `versions seen: ${[...versions].join(', ')}`)
  const after = await send(agent, `${url}/predict`, 'POST', kFull)
  t.same(predictionProblems(after.body), [])
  t.equal(after.body.model_version, 'types_v2', 'the new version serves after the reload')
})

t.test('shutdown: grace period (draining, still serving, each answer closes its connection), then the drain (connection refused)', async (t) => {
  // A grace long enough that the requests below land inside it on a stalled machine.
  const { url, server } = await startServer(t, { shutdown_grace_ms: 4000 })
  const agent = keepAliveAgent(t)
  t.equal((await send(agent, `${url}/predict`, 'POST', kFull)).status, 200)
  const closing = server.close('SIGTERM')
  const graceHealth = await send(agent, `${url}/health`, 'GET')
  t.equal(graceHealth.status, 200)
  t.equal(graceHealth.body.status, 'draining')
  t.same(healthProblems(graceHealth.body), [], 'grace: /health decodes')
  const graceP = await send(agent, `${url}/predict`, 'POST', kFull)
  t.equal(graceP.status, 200)
  t.same(predictionProblems(graceP.body), [], 'grace: prediction decodes')

  // Hold one admitted request at the worker so that the drain lasts until the gate opens.
  const gate = new InferenceGate(server.service.currentModel!)
  const held = send(keepAliveAgent(t), `${url}/predict`, 'POST', kFull)
  t.ok(await until(() => server.service.isShuttingDown, 30_000), 'the grace period ended, the drain started')
  // Draining answers carry Connection: close (README, Draining), so the bot holds no open
  // connection into the drain, and the listener is closed: it meets a refused connection, which
  // its client turns into the fallback (no body to decode).
  await t.rejects(send(agent, `${url}/health`, 'GET'), { code: 'ECONNREFUSED' }, 'drain: a new connection is refused')
  gate.open()
  const answered = await held
  t.equal(answered.status, 200, 'the admitted request is answered')
  t.same(predictionProblems(answered.body), [], 'drain: the admitted request\'s prediction decodes')
  await closing
})

t.test('no model: /health 503 still decodes as Health and says why; /predict 503 has a detail', async (t) => {
  const { url } = await startServer(t, { model_path: join(t.testdir({}), 'missing.onnx'), require_model: false })
  const agent = keepAliveAgent(t)
  const h = await send(agent, `${url}/health`, 'GET')
  t.equal(h.status, 503)
  t.same(healthProblems(h.body), [], '/health body decodes')
  t.match(h.body, { status: 'unavailable', model_loaded: false, model_version: '', detail: 'Model not loaded' })
  const p = await send(agent, `${url}/predict`, 'POST', kFull)
  t.equal(p.status, 503)
  t.same(p.body, { detail: 'Model not loaded' })
})
