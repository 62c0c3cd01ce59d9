/**
 * /ws over a real socket against the real server and model: the hello, binary and JSON frames
 * answering exactly what HTTP answers, pipelining with ids under concurrency, batch frames, and
 * the WebSocket traffic counted in the same metrics as HTTP.
 *
 * Oracle: the server keeps per-symbol state, so "the same answer" is checked on twin symbols
 * that receive identical histories, one per transport.
 */
import t from 'tap'
import { FbClientCodec, type PredictionRequest, type PredictionResult } from '../../src/client/wire-codec.js'
import { kFeatureNames, kFeatureSetVersion } from '../../src/features/feature-spec.js'
import { InferenceGate } from '../helpers/inference-gate.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { marketRequest, RawWs, rng, wsUrl } from './ws-test-client.js'

function asRequest (o: Record<string, number | string>): PredictionRequest {
  return o as unknown as PredictionRequest
}

t.test('the hello arrives first: binary by default, JSON with ?format=json', async (t) => {
  const { url } = await startServer(t, { max_batch_requests: 500, max_body_bytes: 65536 })
  const health = await getJson(`${url}/health`)
  const expected = {
    protocol_version: 1,
    model_version: health.body.model_version,
    feature_set_version: kFeatureSetVersion,
    features: [...kFeatureNames],
    max_in_flight: 1024,
    max_message_bytes: 65536,
    max_batch_requests: 500,
    default_symbol: 'WBNBUSDT',
  }
  const bin = await RawWs.open(wsUrl(url))
  t.teardown(() => { bin.close() })
  t.same(await bin.next(), { kind: 'hello', hello: expected, binary: true })
  const json = await RawWs.open(wsUrl(url, '?format=json'))
  t.teardown(() => { json.close() })
  t.same(await json.next(), { kind: 'hello', hello: expected, binary: false })
})

t.test('binary frames, JSON frames and HTTP give the same predictions for the same history', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  const rand = rng(42)
  let id = 100
  for (let step = 0; step < 12; step++) {
    // Three bars, four updates each: history, same-bar updates and new bars all exercised.
    const base = marketRequest('X', rand, Math.floor(step / 4))
    const http = await postJson(`${url}/predict`, { ...base, symbol: 'EQ_HTTP' })
    t.equal(http.status, 200)
    ws.send(codec.request(++id, asRequest({ ...base, symbol: 'EQ_BIN' })))
    const bin = await ws.next()
    ws.send(JSON.stringify({ ...base, symbol: 'EQ_JSON', id: ++id }))
    const text = await ws.next()
    t.match(bin, { kind: 'prediction', id: id - 1, binary: true })
    t.match(text, { kind: 'prediction', id, binary: false })
    if (bin.kind !== 'prediction' || text.kind !== 'prediction') continue
    for (const p of [bin.prediction, text.prediction]) {
      t.equal(p.probability_long, http.body.probability_long, `step ${step}: probability as over HTTP`)
      t.equal(p.confidence, http.body.confidence)
      t.equal(p.direction, http.body.direction)
      t.equal(p.model_version, http.body.model_version)
      t.type(p.latency_ms, 'number')
    }
    t.equal(bin.prediction.symbol, 'EQ_BIN')
    t.equal(text.prediction.symbol, 'EQ_JSON')
  }
})

t.test('pipelining: 400 requests in flight on one socket, binary and JSON mixed, each answer is its own', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  const rand = rng(7)
  const n = 400
  const requests = new Map<number, Record<string, number | string>>()
  for (let i = 0; i < n; i++) {
    // Distinct, non-sequential ids: an answer matched by position would fail.
    const id = (i * 2654435761) >>> 0
    const req = marketRequest(`PIPE_${i}`, rand)
    requests.set(id, req)
    if (i % 3 === 0) ws.send(JSON.stringify({ ...req, id }))
    else ws.send(codec.request(id, asRequest(req)))
  }
  const answers = await ws.take(n)
  const order = answers.map(a => (a.kind === 'prediction' ? a.id : -1))
  t.equal(new Set(order).size, n, 'one answer per id')
  let inOrder = true
  let i = 0
  for (const id of requests.keys()) if (order[i++] !== id) inOrder = false
  t.comment(`answers ${inOrder ? 'happened to come in request order' : 'came out of request order'}`)
  // Each answer equals what the same snapshot gets alone over HTTP (on a twin symbol).
  const http = await Promise.all([...requests.values()].map(req => postJson(`${url}/predict`, { ...req, symbol: `${req.symbol as string}_H` })))
  const httpBySymbol = new Map(http.map(h => [(h.body.symbol as string).slice(0, -2), h.body]))
  let matched = 0
  for (const a of answers) {
    if (a.kind !== 'prediction') continue
    const req = requests.get(a.id)!
    const h = httpBySymbol.get(a.prediction.symbol)
    if (a.prediction.symbol === req.symbol && h !== undefined && a.prediction.probability_long === h.probability_long) matched++
    t.equal(a.binary, ([...requests.keys()].indexOf(a.id) % 3) !== 0, 'answered in the format of its frame')
  }
  t.equal(matched, n, 'every answer carries its request\'s symbol and its HTTP twin\'s prediction')
})

t.test('batch frames: one BatchResult in request order, per-item errors, same answers as singles', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  const rand = rng(99)
  const reqs = Array.from({ length: 60 }, (_v, i) => marketRequest(`BATCH_${i}`, rand))
  const bad: PredictionRequest[] = [{ price: -5, symbol: 'BAD_A' }, { price: 5, symbol: 'no/slash' }]
  ws.send(codec.batch(4242, [...reqs.map(asRequest), ...bad]))
  const bin = await ws.next()
  ws.send(JSON.stringify({ type: 'predict_batch', id: 4343, requests: [...reqs.map((r, i) => ({ ...r, symbol: `${r.symbol as string}_J`, id: i })), { price: 'x' }, { price: 1, id: -1 }] }))
  const text = await ws.next()
  const singles = await Promise.all(reqs.map(r => postJson(`${url}/predict`, { ...r, symbol: `${r.symbol as string}_H` })))

  t.match(bin, { kind: 'batch', id: 4242, binary: true })
  t.match(text, { kind: 'batch', id: 4343, binary: false })
  if (bin.kind !== 'batch' || text.kind !== 'batch') return
  t.equal(bin.results.length, 62)
  t.equal(text.results.length, 62)
  const predictionOf = (r: PredictionResult | undefined) => (r?.ok === true ? r.prediction : null)
  for (let i = 0; i < reqs.length; i++) {
    t.equal(predictionOf(bin.results[i])?.symbol, reqs[i]!.symbol, `binary item ${i} in order`)
    t.equal(predictionOf(bin.results[i])?.probability_long, singles[i]!.body.probability_long, `binary item ${i} = single`)
    t.equal(predictionOf(text.results[i])?.probability_long, singles[i]!.body.probability_long, `JSON item ${i} = single`)
  }
  t.match(bin.results[60], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 60, 'price'] }] } })
  t.match(bin.results[61], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 61, 'symbol'] }] } })
  t.match(text.results[60], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 60, 'price'], type: 'type_error.float' }] } })
  t.match(text.results[61], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 61, 'id'] }] } })

  ws.send(codec.batch(1, []))
  t.match(await ws.next(), { kind: 'batch', id: 1, results: [] }, 'an empty batch answers an empty BatchResult')
})

t.test('WebSocket traffic is counted in the service metrics', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  const before = (await getJson(`${url}/metrics`)).body
  for (let i = 0; i < 5; i++) ws.send(codec.request(i, { price: 100 + i, symbol: 'METRICS' }))
  ws.send(codec.request(9, { price: -1 }))
  ws.send('{"id": 10}')
  ws.send(Buffer.from('nonsense, not a flatbuffer'))
  await ws.take(8)
  const after = (await getJson(`${url}/metrics`)).body
  t.equal(after.predictions_total - before.predictions_total, 5, 'predictions counted')
  t.equal(after.latency_ms.count - before.latency_ms.count, 5, 'latencies recorded')
  t.equal((after.errors_by_code.ERR_VALIDATION ?? 0) - (before.errors_by_code.ERR_VALIDATION ?? 0), 2, 'validation errors counted')
  t.equal((after.errors_by_code.ERR_PROTOCOL ?? 0) - (before.errors_by_code.ERR_PROTOCOL ?? 0), 1, 'unreadable frames counted')
})

t.test('outcomes of the prediction path arrive with the contract\'s codes', async (t) => {
  await t.test('no model loaded: the hello says so, requests get MODEL_NOT_LOADED', async (t) => {
    const { url } = await startServer(t, { model_path: 'models/does-not-exist.onnx', require_model: false })
    const ws = await RawWs.open(wsUrl(url))
    t.teardown(() => { ws.close() })
    t.match(await ws.next(), { kind: 'hello', hello: { model_version: null } })
    ws.send(new FbClientCodec().request(5, { price: 1 }))
    t.match(await ws.next(), { kind: 'error', id: 5, error: { wireCode: 'MODEL_NOT_LOADED', message: 'MODEL_NOT_LOADED: Model not loaded' } })
    ws.send(JSON.stringify({ type: 'predict_batch', id: 6, requests: [{ price: 1 }] }))
    t.match(await ws.next(), { kind: 'batch', id: 6, results: [{ ok: false, error: { wireCode: 'MODEL_NOT_LOADED' } }] })
  })

  await t.test('queue full, deadline passed, inference failed: OVERLOADED, DEADLINE_EXCEEDED, INTERNAL', async (t) => {
    const { url, server } = await startServer(t, { workers: 1, max_queue_size: 2, max_batch_size: 1 })
    const ws = await RawWs.open(wsUrl(url))
    t.teardown(() => { ws.close() })
    await ws.next()
    const codec = new FbClientCodec()
    // Inference held at a gate: what is queued behind the first request stays queued.
    const gate = new InferenceGate(server.service.currentModel!)
    ws.send(codec.batch(1, [
      { price: 1, symbol: 'Q_A' }, // dispatched at once, held at the gate
      { price: 1, symbol: 'Q_B', deadline_ms: 1 }, // queued; expired by the time the worker frees
      { price: 1, symbol: 'Q_C' }, // queued
      { price: 1, symbol: 'Q_D' }, // over max_queue_size 2: shed
    ]))
    // Once the frame is admitted (Q_B and Q_C queued), let Q_B's 1 ms deadline pass, then free the
    // worker. Waiting for the admission, not a fixed sleep from the send: on a stalled machine the
    // frame can be read after a sleep has already run out, and Q_B could then still be in time.
    const admittedBy = Date.now() + 20_000
    while (server.service.queueDepth < 2 && Date.now() < admittedBy) await new Promise(resolve => setTimeout(resolve, 2))
    t.equal(server.service.queueDepth, 2, 'Q_B and Q_C queued behind Q_A')
    await new Promise(resolve => setTimeout(resolve, 20))
    gate.open()
    const first = await ws.next()
    t.match(first, {
      kind: 'batch',
      id: 1,
      results: [
        { ok: true, prediction: { symbol: 'Q_A' } },
        { ok: false, error: { wireCode: 'DEADLINE_EXCEEDED' } },
        { ok: true, prediction: { symbol: 'Q_C' } },
        { ok: false, error: { wireCode: 'OVERLOADED' } },
      ],
    })
    gate.failNext()
    ws.send(codec.request(2, { price: 1, symbol: 'Q_E' }))
    t.match(await ws.next(), { kind: 'error', id: 2, error: { wireCode: 'INTERNAL', message: 'INTERNAL: Inference failed' } })
    ws.send(codec.request(3, { price: 1, symbol: 'Q_F' }))
    t.match(await ws.next(), { kind: 'prediction', id: 3 }, 'the next request is served')
  })
})
