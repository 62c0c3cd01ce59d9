/**
 * `components` end to end (issue 14): the real server serving the shipped model set
 * (models/ensemble_phase2_v1.set.json: the calibrated XGBoost and the GAF-CNN, 0.7/0.3), over
 * real HTTP and a real /ws socket, both frame formats. A symbol without 32 bars of history gets
 * the CNN left out (no_history, the tree's weight renormalized to 1); with the history, both are
 * used and the answer is their weighted mean. The three transports carry the same components for
 * the same history.
 */
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FbClientCodec, type Prediction, type PredictionComponent, type PredictionRequest } from '../../src/client/wire-codec.js'
import { postJson, startServer } from '../helpers/start-server.js'
import { marketRequest, RawWs, rng, wsUrl } from '../ws/ws-test-client.js'

const kSetPath = fileURLToPath(new URL('../../models/ensemble_phase2_v1.set.json', import.meta.url))
/** The CNN's input window (models/gaf_cnn_phase2_v1.json input.window), plus margin. */
const kHistoryBars = 40

function asRequest (r: Record<string, number | string>): PredictionRequest { return r as unknown as PredictionRequest }

function checkBothUsed (t: Test, p: Prediction, label: string): void {
  const c = p.components ?? []
  t.same(c.map((x) => [x.model_version, x.status, x.weight]),
    [['xgboost_phase1_v2_calibrated', 'used', 0.7], ['gaf_cnn_phase2_v1', 'used', 0.3]], `${label}: both members used, weights 0.7/0.3`)
  const mean = 0.7 * c[0]!.probability_long! + 0.3 * c[1]!.probability_long!
  t.ok(Math.abs(p.probability_long - mean) <= 2e-6, `${label}: probability_long ${p.probability_long} is the weighted mean ${mean}`)
}

t.test('a set answer carries components on HTTP JSON, /ws text and /ws binary', async (t) => {
  const { url } = await startServer(t, { model_path: kSetPath, workers: 1 })
  const rand = rng(1414)

  // No history: the CNN cannot answer; the tree answers alone, with all the weight.
  const fresh = await postJson(`${url}/predict`, { ...marketRequest('SET_FRESH', rand), symbol: 'SET_FRESH' })
  t.equal(fresh.status, 200)
  t.equal(fresh.body.model_version, 'ensemble_phase2_v1')
  t.same(fresh.body.components, [
    { model_version: 'xgboost_phase1_v2_calibrated', probability_long: fresh.body.probability_long, weight: 1, status: 'used' },
    { model_version: 'gaf_cnn_phase2_v1', probability_long: null, weight: 0, status: 'no_history' },
  ], 'the CNN left out with probability null and weight 0')

  // The same history for three symbols, one per transport.
  const symbols = ['SET_HTTP', 'SET_BIN', 'SET_TEXT'] as const
  const bars = Array.from({ length: kHistoryBars + 1 }, (_, bar) => marketRequest('X', rand, bar))
  for (const symbol of symbols) {
    const history = bars.slice(0, kHistoryBars).map((b) => ({ ...b, symbol }))
    const res = await postJson(`${url}/predict/batch`, { requests: history })
    t.equal(res.status, 200, `${symbol}: history accepted`)
    const last = res.body.predictions.at(-1)
    t.same(last.components?.map((c: PredictionComponent) => c.status), ['used', 'used'], `${symbol}: /predict/batch items carry components`)
    t.same(res.body.predictions[0].components?.map((c: PredictionComponent) => c.status), ['used', 'no_history'], `${symbol}: the first bar had no history`)
  }

  const final = bars[kHistoryBars]!
  const http = await postJson(`${url}/predict`, { ...final, symbol: 'SET_HTTP' })
  t.equal(http.status, 200)
  checkBothUsed(t, http.body as Prediction, 'HTTP')

  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  const hello = await ws.next()
  t.match(hello, { kind: 'hello', hello: { model_version: 'ensemble_phase2_v1' } })

  ws.send(new FbClientCodec().request(31, asRequest({ ...final, symbol: 'SET_BIN' })))
  const bin = await ws.next()
  ws.send(JSON.stringify({ ...final, symbol: 'SET_TEXT', id: 32 }))
  const text = await ws.next()
  t.match(bin, { kind: 'prediction', id: 31, binary: true })
  t.match(text, { kind: 'prediction', id: 32, binary: false })
  if (bin.kind !== 'prediction' || text.kind !== 'prediction') return
  checkBothUsed(t, bin.prediction, '/ws binary')
  checkBothUsed(t, text.prediction, '/ws text')
  t.same(bin.prediction.components, http.body.components, 'binary = HTTP, member by member')
  t.same(text.prediction.components, http.body.components, 'text = HTTP, member by member')

  // Batch frames: a fresh symbol (CNN left out) next to one with history, both formats.
  const items = [{ ...final, symbol: 'SET_BATCH_FRESH' }, { ...final, symbol: 'SET_HTTP' }]
  ws.send(new FbClientCodec().batch(41, items.map(asRequest)))
  ws.send(JSON.stringify({ type: 'predict_batch', id: 42, requests: items }))
  for (const m of await ws.take(2)) {
    if (m.kind !== 'batch') { t.fail(`expected a batch, got ${m.kind}`); continue }
    const statuses = m.results.map((r) => r.ok ? r.prediction.components?.map((c) => c.status) : r.error.wireCode)
    t.same(statuses, [['used', 'no_history'], ['used', 'used']], `batch ${m.id} (${m.binary ? 'binary' : 'text'}): per-item components`)
  }
})
