/**
 * Bounded memory on /ws, and the close codes uWS really produces: oversized frames (1009 from us
 * up to twice max_body_bytes, then uWS's own drop, seen as 1006), the per-connection in-flight
 * limit (OVERLOADED), and a client that stops reading (refused, then closed).
 */
import t from 'tap'
import { FbClientCodec, type PredictionRequest } from '../../src/client/wire-codec.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from './ws-test-client.js'

const codec = new FbClientCodec()

t.test('a frame over max_body_bytes closes the connection with 1009; far over it, uWS drops it (1006)', async (t) => {
  const { url } = await startServer(t, { max_body_bytes: 4096 })
  const cases: Array<[string, Uint8Array | string, number]> = [
    ['binary, limit + 1 bytes', new Uint8Array(4097), 1009],
    ['JSON text, limit + 1 bytes', JSON.stringify({ id: 1, price: 1, pad: 'x'.repeat(4097 - JSON.stringify({ id: 1, price: 1, pad: '' }).length) }), 1009],
    ['binary, twice the limit', new Uint8Array(8192), 1009],
    ['binary, past uWS maxPayloadLength (2x limit)', new Uint8Array(8193), 1006],
  ]
  for (const [name, frame, code] of cases) {
    const ws = await RawWs.open(wsUrl(url))
    t.teardown(() => { ws.close() })
    await ws.next()
    t.ok(typeof frame !== 'string' || Buffer.byteLength(frame) === 4097, `${name}: frame size`)
    ws.send(frame)
    const closed = await ws.waitClose()
    t.equal(closed.code, code, `${name}: close ${code}`)
    if (code === 1009) t.equal(closed.reason, 'Message too big')
  }
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  ws.send(codec.request(1, { price: 1, symbol: 'X'.repeat(32) }))
  t.match(await ws.next(), { kind: 'prediction', id: 1 }, 'a frame at the limit or below is served')
  const metrics = (await getJson(`${url}/metrics`)).body
  t.equal(metrics.errors_by_code.ERR_BODY_TOO_LARGE, 3, 'our 1009 closes are counted')
})

t.test('more requests in flight on one connection than max_in_flight: the extra ones get OVERLOADED', async (t) => {
  const { url } = await startServer(t, { max_batch_requests: 2000, max_queue_size: 10_000, ws_max_in_flight: 300 })
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  const hello = await ws.next()
  const limit = hello.kind === 'hello' ? hello.hello.max_in_flight : 0
  t.equal(limit, 300, 'the hello advertises the configured ws_max_in_flight')
  // One frame: every item is admitted or refused before any answer can come back.
  const reqs: PredictionRequest[] = Array.from({ length: limit + 76 }, (_v, i) => ({ price: 100 + i, symbol: `INF_${i}` }))
  ws.send(codec.batch(7, reqs))
  const answer = await ws.next(20_000)
  t.match(answer, { kind: 'batch', id: 7 })
  if (answer.kind !== 'batch') return
  const overloaded = answer.results.filter(r => !r.ok && r.error.wireCode === 'OVERLOADED')
  const ok = answer.results.filter(r => r.ok)
  t.equal(ok.length, limit, 'max_in_flight answered')
  t.equal(overloaded.length, 76, 'the rest refused with OVERLOADED')
  t.ok(answer.results.slice(limit).every(r => !r.ok), 'the refused ones are the last')
  ws.send(codec.request(8, { price: 1 }))
  t.match(await ws.next(), { kind: 'prediction', id: 8 }, 'slots are freed once answered')
})

t.test('a client that stops reading is refused with OVERLOADED, then closed; memory stays bounded', async (t) => {
  const { url, server } = await startServer(t, { max_body_bytes: 65536 })
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  t.equal(server.webSocketCount, 1)
  // Stop reading: answers pile up in the kernel buffers, then in uWS's backpressure buffer.
  const socket = (ws.socket as unknown as { _socket: import('node:net').Socket })._socket
  socket.pause()
  // Invalid items are answered at once with a long detail each: ~8x more bytes out than in. Past
  // the soft limit every frame gets a small OVERLOADED instead; those fill up to the hard limit.
  const invalid = codec.batch(1, Array.from({ length: 1000 }, () => ({ price: -1 }))).slice()
  const tiny = codec.request(2, { price: 1 }).slice()
  const deadline = Date.now() + 20_000
  let frames = 0
  while (server.webSocketCount > 0 && Date.now() < deadline && frames < 500_000) {
    ws.send(frames < 100 ? invalid : tiny)
    frames++
    // Yield now and then so that the server gets to read.
    if (frames % 500 === 0) await new Promise(resolve => setImmediate(resolve))
    if (ws.socket.bufferedAmount > 8 << 20) await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.equal(server.webSocketCount, 0, `the server closed the connection (after ${frames} frames)`)
  socket.resume()
  const closed = await ws.waitClose(20_000)
  t.comment(`the client saw close code ${closed.code} ${closed.reason}`)
  t.equal(closed.code, 1006, 'an abrupt close: the close frame could not have been read either')
  const metrics = (await getJson(`${url}/metrics`)).body
  t.ok(metrics.errors_by_code.ERR_OVERLOADED > 0, `frames past the soft limit were refused with OVERLOADED (${metrics.errors_by_code.ERR_OVERLOADED as number})`)
  const res = await postJson(`${url}/predict`, { price: 1 })
  t.equal(res.status, 200, 'the server still serves')
  const other = await RawWs.open(wsUrl(url))
  t.teardown(() => { other.close() })
  t.match(await other.next(), { kind: 'hello' }, 'and accepts new connections')
})
