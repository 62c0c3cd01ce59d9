/**
 * Issue 10, item 4: a /ws text frame whose `type` was an array nested 10,000 deep was refused with
 * a message that echoed the value through JSON.stringify, which is recursive and overflowed the
 * stack. The frame was answered INTERNAL without its id, logged as a server error and counted as
 * ERR_INTERNAL (the error-rate alert), and each 20 KB frame held the event loop for milliseconds.
 * Now an unexpected `type` is described by its JSON type only: INVALID_ARGUMENT with the id.
 */
import t from 'tap'
import { FbClientCodec } from '../../src/client/wire-codec.js'
import { startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from '../ws/ws-test-client.js'

const kDepth = 10_000

t.test('a deeply nested `type` is INVALID_ARGUMENT with the id; the connection and another client are served', async (t) => {
  const { url, server } = await startServer(t, { workers: 1 })
  const attacker = await RawWs.open(wsUrl(url, '?format=json'))
  const other = await RawWs.open(wsUrl(url))
  t.teardown(() => { attacker.close(); other.close() })
  t.match(await attacker.next(), { kind: 'hello' })
  t.match(await other.next(), { kind: 'hello' })
  const codec = new FbClientCodec()

  const nested = `${'['.repeat(kDepth)}${']'.repeat(kDepth)}`
  const frames = [
    { id: 77, text: `{"id":77,"type":${nested},"price":612.5}` },
    { id: 78, text: `{"type":${nested},"id":78}` },
    { id: 79, text: `{"id":79,"type":${'{"a":'.repeat(kDepth)}1${'}'.repeat(kDepth)}}` },
  ]
  // The other client's request goes out with the hostile frames, and must be answered as usual.
  other.send(codec.request(5, { price: 612.5, symbol: 'BYSTANDER' }))
  for (const f of frames) attacker.send(f.text)
  for (const f of frames) {
    const answer = await attacker.next()
    t.match(answer, { kind: 'error', id: f.id, error: { wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['type'], type: 'value_error.const' }] } },
      `frame ${f.id}: INVALID_ARGUMENT with its id`)
    if (answer.kind === 'error') t.ok(answer.error.message.length < 200, `frame ${f.id}: the message does not echo the value (${answer.error.message.slice(0, 200)})`)
  }
  t.match(await other.next(), { kind: 'prediction', id: 5, prediction: { symbol: 'BYSTANDER' } }, 'the concurrent client is answered')

  attacker.send(JSON.stringify({ id: 80, price: 612.5, symbol: 'STILL_OK' }))
  t.match(await attacker.next(), { kind: 'prediction', id: 80, prediction: { symbol: 'STILL_OK' } }, 'the attacker\'s connection still serves')

  const errors = server.metrics.toJSON().errors_by_code
  t.equal(errors.ERR_INTERNAL, undefined, 'nothing counted as an internal error')
  t.equal(errors.ERR_VALIDATION, frames.length, 'each frame counted as a client validation error')
})

t.test('a long string `type` is echoed truncated, not whole', async (t) => {
  const { url } = await startServer(t, { workers: 1 })
  const ws = await RawWs.open(wsUrl(url, '?format=json'))
  t.teardown(() => { ws.close() })
  await ws.next()
  ws.send(JSON.stringify({ id: 81, type: 'x'.repeat(100_000) }))
  const answer = await ws.next()
  t.match(answer, { kind: 'error', id: 81, error: { wireCode: 'INVALID_ARGUMENT' } })
  if (answer.kind === 'error') t.ok(answer.error.message.length < 200, `bounded message: ${answer.error.message.slice(0, 200)}`)
})
