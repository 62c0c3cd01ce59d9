/**
 * Graceful shutdown with WebSockets open: every request the server admitted is answered, then each
 * connection is closed with 1001 (going away); nothing is cut off mid-flight.
 */
import t from 'tap'
import { FbClientCodec, type PredictionRequest } from '../../src/client/wire-codec.js'
import { InferenceGate } from '../helpers/inference-gate.js'
import { startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl, type Received } from './ws-test-client.js'

t.test('shutdown: in-flight requests are answered, then the socket closes with 1001', async (t) => {
  const { url, server } = await startServer(t)
  const a = await RawWs.open(wsUrl(url))
  const b = await RawWs.open(wsUrl(url, '?format=json'))
  t.teardown(() => { a.close(); b.close() })
  await a.next()
  await b.next()
  const codec = new FbClientCodec()
  const n = 300
  const singles = 20
  const total = n + singles
  // Start closing the moment the last request is admitted: everything is then in flight.
  const service = server.service
  const submit = service.submit.bind(service)
  let admitted = 0
  let closing: Promise<void> | null = null
  service.submit = (...args: Parameters<typeof submit>) => {
    const result = submit(...args)
    if (++admitted === total) queueMicrotask(() => { closing = server.close('test') })
    return result
  }
  for (let i = 0; i < singles; i++) b.send(JSON.stringify({ id: i, price: 100 + i, symbol: `SD_J${i}` }))
  const reqs: PredictionRequest[] = Array.from({ length: n }, (_v, i) => ({ price: 50 + i, symbol: `SD_${i}` }))
  a.send(codec.batch(99, reqs))

  const batch = await a.next()
  t.match(batch, { kind: 'batch', id: 99 })
  if (batch.kind === 'batch') t.ok(batch.results.length === n && batch.results.every(r => r.ok), `all ${n} batch items answered with predictions`)
  const answers: Received[] = await b.take(singles)
  t.equal(answers.filter(m => m.kind === 'prediction').length, singles, `all ${singles} JSON requests answered with predictions`)
  t.ok(closing !== null, 'the server was closing while they were in flight')
  t.same(await a.waitClose(), { code: 1001, reason: 'Server shutting down' }, 'then 1001')
  t.same(await b.waitClose(), { code: 1001, reason: 'Server shutting down' })
  await closing
  t.equal(server.webSocketCount, 0)
})

t.test('a frame arriving while the server drains is refused with OVERLOADED, not dropped', async (t) => {
  const { url, server } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  // Hold inference at a gate, so that the drain is certainly still going when the late frame lands.
  const gate = new InferenceGate(server.service.currentModel!)
  const service = server.service
  const submit = service.submit.bind(service)
  let admitted!: () => void
  const wasAdmitted = new Promise<void>((resolve) => { admitted = resolve })
  service.submit = (...args: Parameters<typeof submit>) => {
    const result = submit(...args)
    admitted()
    return result
  }
  ws.send(codec.batch(1, Array.from({ length: 200 }, (_v, i) => ({ price: 10 + i, symbol: `DR_${i}` }))))
  await wasAdmitted
  const closing = server.close('test')
  ws.send(codec.request(2, { price: 1 }))
  t.match(await ws.next(), { kind: 'error', id: 2, error: { wireCode: 'OVERLOADED', message: 'OVERLOADED: Shutting down' } }, 'the late request is refused at once')
  gate.open()
  t.match(await ws.next(), { kind: 'batch', id: 1 }, 'the admitted batch is answered')
  t.equal((await ws.waitClose()).code, 1001, 'then 1001')
  await closing
})
