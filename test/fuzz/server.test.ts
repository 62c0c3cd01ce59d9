/**
 * Property-based fuzzing against the real server on loopback (fewer cases than the in-process
 * decoder fuzzing next door: each is two round trips): hostile /ws text and binary frames, and
 * hostile POST /predict and /predict/batch bodies.
 *
 * Every case must be answered, never INTERNAL / 500: a client error (INVALID_ARGUMENT, 400/422
 * with a detail) carrying the id whenever the frame let it be read, or a prediction when the
 * damaged input happens to still be valid. Then a valid request on the same connection (the
 * same keep-alive socket over HTTP) must be answered, so no input costs a client its connection.
 *
 * Scale with FUZZ_SERVER_RUNS / FUZZ_TIME_MS / FUZZ_SEED (test/fuzz/fuzz-settings.ts).
 */
import fc from 'fast-check'
import { Agent, request as httpRequest } from 'node:http'
import t, { type Test } from 'tap'
import { FbClientCodec } from '../../src/client/wire-codec.js'
import { FbFrameReader, kFrameInvalid } from '../../src/protocol/fb-codec.js'
import { startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl, type Received } from '../ws/ws-test-client.js'
import { expectedJsonId, fbHostileFrameArb, httpBodyArb, wsJsonFrameArb } from './arbitraries.js'
import { fcParams, kServerRuns } from './fuzz-settings.js'

const kMaxBody = 1_048_576
const kMaxBatch = 1000
/** What a hostile but readable input may legitimately get besides a prediction. */
const kClientCodes = new Set(['INVALID_ARGUMENT', 'DEADLINE_EXCEEDED'])

async function checkProperty<T> (t: Test, name: string, property: fc.IAsyncProperty<T>): Promise<void> {
  const details = await fc.check(property, fcParams<T>(kServerRuns))
  if (details.failed) t.fail(`${name}\n${fc.defaultReportMessage(details) ?? ''}`)
  else t.pass(`${name}: ${details.numRuns} runs${details.interrupted ? ' (time budget reached)' : ''}`)
}

/** Throws when a /ws answer breaks the contract for a frame whose readable id is `expectedId`. */
function checkWsAnswer (answer: Received, expectedId: number | null, accepted: boolean | null): void {
  if (answer.kind === 'hello') throw new Error('a second hello')
  if (answer.kind === 'error') {
    const code = answer.error.wireCode
    if (!kClientCodes.has(code)) throw new Error(`answered ${code}: ${answer.error.message.slice(0, 200)}`)
    if (code === 'INVALID_ARGUMENT' && answer.id !== expectedId) throw new Error(`error carries id ${String(answer.id)}, the frame's is ${String(expectedId)}`)
    if (answer.error.message.length > 512) throw new Error(`message of ${answer.error.message.length} characters`)
    return
  }
  if (accepted === false) throw new Error(`a refused frame answered ${answer.kind}`)
  if (answer.id !== expectedId) throw new Error(`${answer.kind} carries id ${answer.id}, the frame's is ${String(expectedId)}`)
  if (answer.kind === 'batch') {
    for (const r of answer.results) {
      if (!r.ok && !kClientCodes.has(r.error.wireCode)) throw new Error(`batch item answered ${r.error.wireCode}: ${r.error.message.slice(0, 200)}`)
    }
  }
}

t.test('/ws: hostile text and binary frames are answered as client errors and the connection serves on', async (t) => {
  const { url, server } = await startServer(t, { workers: 1 })
  const text = await RawWs.open(wsUrl(url, '?format=json'))
  const binary = await RawWs.open(wsUrl(url))
  t.teardown(() => { text.close(); binary.close() })
  await text.next()
  await binary.next()
  const codec = new FbClientCodec()
  // The server's own reader as the oracle for binary frames: which id is readable from damaged
  // FlatBuffers is the reader's definition (the in-process fuzzing checks the reader itself).
  const oracle = new FbFrameReader()
  let sentinel = 0

  await checkProperty(t, 'text frames', fc.asyncProperty(wsJsonFrameArb.filter((s) => Buffer.byteLength(s) <= kMaxBody), async (frame) => {
    text.send(frame)
    checkWsAnswer(await text.next(), expectedJsonId(frame), null)
    const id = ++sentinel
    text.send(JSON.stringify({ id, price: 612.5, symbol: 'FUZZ_SENTINEL' }))
    const after = await text.next()
    if (after.kind !== 'prediction' || after.id !== id) throw new Error(`the connection no longer serves: ${JSON.stringify(after).slice(0, 300)}`)
  }))

  await checkProperty(t, 'binary frames', fc.asyncProperty(fbHostileFrameArb, async (frame) => {
    const kind = oracle.open(frame, kMaxBatch)
    const expectedId = oracle.idKnown ? oracle.id : null
    binary.send(frame)
    checkWsAnswer(await binary.next(), expectedId, kind !== kFrameInvalid)
    const id = ++sentinel
    binary.send(codec.request(id, { price: 612.5, symbol: 'FUZZ_SENTINEL' }))
    const after = await binary.next()
    if (after.kind !== 'prediction' || after.id !== id) throw new Error(`the connection no longer serves: ${JSON.stringify(after).slice(0, 300)}`)
  }))

  const errors = server.metrics.toJSON().errors_by_code
  t.equal(errors.ERR_INTERNAL, undefined, 'no ERR_INTERNAL counted')
  t.equal(errors.ERR_INFERENCE, undefined, 'no ERR_INFERENCE counted')
})

interface HttpAnswer { status: number, body: unknown, reusedSocket: boolean }

function post (agent: Agent, port: number, path: string, body: string | Uint8Array): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' }, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const textBody = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown = textBody
        try { parsed = JSON.parse(textBody) } catch { /* kept as text: the check below reports it */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, reusedSocket: req.reusedSocket })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('no answer within 20 s')) })
    req.on('error', reject)
    req.end(body)
  })
}

function checkHttpAnswer (a: HttpAnswer, batch: boolean): void {
  if (a.status >= 500 && a.status !== 504) throw new Error(`status ${a.status}: ${JSON.stringify(a.body).slice(0, 300)}`)
  if (a.status !== 200 && a.status !== 400 && a.status !== 422 && a.status !== 504) throw new Error(`status ${a.status}`)
  const body = a.body as { detail?: unknown, predictions?: Array<{ error?: string }> }
  if (a.status !== 200) {
    if (typeof body !== 'object' || body === null || body.detail === undefined) throw new Error(`${a.status} without a detail: ${String(a.body).slice(0, 200)}`)
    if (JSON.stringify(body).length > 16 * 300) throw new Error(`detail of ${JSON.stringify(body).length} characters`)
    return
  }
  if (batch) {
    if (!Array.isArray(body.predictions)) throw new Error('200 without predictions')
    for (const p of body.predictions) {
      if (p.error !== undefined && !kClientCodes.has(p.error)) throw new Error(`batch item ${p.error}`)
    }
  }
}

t.test('HTTP: hostile /predict and /predict/batch bodies get 4xx with a detail and the keep-alive connection serves on', async (t) => {
  const { port, server } = await startServer(t, { workers: 1 })
  // One socket: the follow-up request must reuse the connection the hostile body came on.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { agent.destroy() })
  const sentinelBody = JSON.stringify({ price: 612.5, symbol: 'FUZZ_SENTINEL' })
  const invalidUtf8 = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => { const c = new Uint8Array(b.length + 3); c.set([0x7B, 0xC3, 0x28]); c.set(b, 3); return c })

  for (const batch of [false, true]) {
    const path = batch ? '/predict/batch' : '/predict'
    const bodies = fc.oneof(
      { weight: 9, arbitrary: httpBodyArb(batch).filter((s) => Buffer.byteLength(s) <= kMaxBody) as fc.Arbitrary<string | Uint8Array> },
      { weight: 1, arbitrary: invalidUtf8 },
    )
    await checkProperty(t, `${path} bodies`, fc.asyncProperty(bodies, async (body) => {
      checkHttpAnswer(await post(agent, port, path, body), batch)
      const after = await post(agent, port, '/predict', sentinelBody)
      if (after.status !== 200) throw new Error(`the server no longer serves: ${after.status}`)
      if (!after.reusedSocket) throw new Error('the connection was closed after the hostile body')
    }))
  }
  const errors = server.metrics.toJSON().errors_by_code
  t.equal(errors.ERR_INTERNAL, undefined, 'no ERR_INTERNAL counted')
  t.equal(errors.ERR_INFERENCE, undefined, 'no ERR_INFERENCE counted')
})
