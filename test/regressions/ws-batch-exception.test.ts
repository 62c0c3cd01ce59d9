/**
 * Review finding B5: an exception in the middle of a /ws batch frame (a bug, not the client's)
 * left the frame's own count held, so the frame was never answered and never returned to the
 * connection's free list, and the item that threw kept its in-flight slot. Now the frame is
 * answered (placed items as usual, the rest INTERNAL), and nothing is held.
 */
import t from 'tap'
import { FbClientCodec } from '../../src/client/wire-codec.js'
import { startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from '../ws/ws-test-client.js'

t.test('a bug thrown mid-frame: the frame is still answered and the connection keeps its capacity', async (t) => {
  // An in-flight limit of 4: a slot lost per frame would show as OVERLOADED within a few frames.
  const { url, server } = await startServer(t, { workers: 1, ws_max_in_flight: 4 })
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  await ws.next()
  const codec = new FbClientCodec()
  const service = server.service
  const submit = service.submit.bind(service)
  let calls = 0
  service.submit = (...args: Parameters<typeof submit>) => {
    if (++calls % 3 === 2) throw new Error('injected bug in submit')
    return submit(...args)
  }
  for (let frame = 0; frame < 6; frame++) {
    ws.send(codec.batch(100 + frame, [{ price: 1, symbol: 'BX_A' }, { price: 2, symbol: 'BX_B' }, { price: 3, symbol: 'BX_C' }]))
    const got = [await ws.next(), await ws.next()]
    const batch = got.find(m => m.kind === 'batch')
    const error = got.find(m => m.kind === 'error')
    t.match(batch, {
      kind: 'batch',
      id: 100 + frame,
      results: [
        { ok: true, prediction: { symbol: 'BX_A' } },
        { ok: false, error: { wireCode: 'INTERNAL' } },
        { ok: false, error: { wireCode: 'INTERNAL' } },
      ],
    }, `frame ${frame}: answered, the first item served and the rest INTERNAL`)
    t.match(error, { kind: 'error', error: { wireCode: 'INTERNAL' } }, `frame ${frame}: the bug is also reported without an id`)
    calls = 0
  }
  service.submit = submit
  ws.send(codec.batch(200, [1, 2, 3, 4].map(i => ({ price: i, symbol: `BX_${i}` }))))
  const last = await ws.next()
  t.match(last, { kind: 'batch', id: 200 })
  if (last.kind === 'batch') t.ok(last.results.every(r => r.ok), 'all four in-flight slots are free again: no OVERLOADED')
})
