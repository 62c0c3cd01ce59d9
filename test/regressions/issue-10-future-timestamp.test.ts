/**
 * Issue 10, item 1: one request with a future timestamp_ms (inside the old 60 s allowance) opened a
 * symbol's next bar a whole bar early, and every other client's request without timestamp_ms for
 * that symbol was then refused 422 "stale", blaming a field it never sent. The rule now (docs/architecture.md,
 * "Time rule"): timestamps more than max_clock_skew_ms ahead are refused naming timestamp_ms, and a
 * request without timestamp_ms joins the symbol's current bar when that bar is ahead of the clock,
 * so it is never stale. Over real HTTP and /ws, with the real model. (The bar-ahead-of-the-clock
 * case needs a timestamp within the skew just before a bar boundary; it is checked with explicit
 * arrival times in test/features/symbol-state.test.ts, since the shipped model fixes bar_ms at 60 s.)
 */
import t from 'tap'
import { postJson, startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from '../ws/ws-test-client.js'

t.test('HTTP: a timestamp 58 s ahead is refused naming timestamp_ms; other clients are unaffected', async (t) => {
  const { url, server } = await startServer(t)
  for (const symbol of ['S', null]) {
    const label = symbol ?? 'default symbol'
    const before = server.service.features.currentBar(symbol ?? server.service.defaultSymbol)
    const hostile = await postJson(`${url}/predict`, { price: 100, ...(symbol === null ? {} : { symbol }), timestamp_ms: Date.now() + 58_000 })
    t.equal(hostile.status, 422, `${label}: refused`)
    t.match(hostile.body.detail, [{ loc: ['body', 'timestamp_ms'], type: 'value_error.timestamp.future' }], `${label}: names timestamp_ms`)
    t.equal(server.service.features.currentBar(symbol ?? server.service.defaultSymbol), before, `${label}: no bar opened`)
    const other = await postJson(`${url}/predict`, { price: 101, ...(symbol === null ? {} : { symbol }) })
    t.equal(other.status, 200, `${label}: a request without timestamp_ms is served`)
  }
  // The same in a batch: the item is refused, the next item (no timestamp) is served.
  const batch = await postJson(`${url}/predict/batch`, { requests: [{ price: 100, symbol: 'B', timestamp_ms: Date.now() + 58_000 }, { price: 100, symbol: 'B' }] })
  t.equal(batch.status, 200)
  t.match(batch.body.predictions[0], { status_code: 422, detail: [{ loc: ['body', 'requests', 0, 'timestamp_ms'], type: 'value_error.timestamp.future' }] })
  t.match(batch.body.predictions[1], { direction: String, symbol: 'B' })
})

t.test('/ws: the same rule', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  t.match(await ws.next(), { kind: 'hello' })
  ws.send(JSON.stringify({ id: 1, price: 100, symbol: 'W', timestamp_ms: Date.now() + 58_000 }))
  t.match(await ws.next(), { kind: 'error', id: 1, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['timestamp_ms'], type: 'value_error.timestamp.future' }] } })
  ws.send(JSON.stringify({ id: 2, price: 101, symbol: 'W' }))
  t.match(await ws.next(), { kind: 'prediction', id: 2 }, 'a request without timestamp_ms is served')
  ws.send(JSON.stringify({ id: 3, type: 'predict_batch', requests: [{ id: 0, price: 100, symbol: 'W', timestamp_ms: Date.now() + 58_000 }, { id: 1, price: 100, symbol: 'W' }] }))
  const batch = await ws.next()
  t.match(batch, { kind: 'batch', id: 3 })
  if (batch.kind === 'batch') {
    t.match(batch.results[0], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 0, 'timestamp_ms'], type: 'value_error.timestamp.future' }] } })
    t.match(batch.results[1], { ok: true })
  }
})
