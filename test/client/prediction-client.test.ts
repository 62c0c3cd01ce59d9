/**
 * The client library against the real server (in-process, loopback, real model): pipelined calls
 * over one socket in both formats, batches, typed errors, the bot's fallback and log lines, HTTP
 * while the socket is down, health checks, close, and reconnection after a server restart.
 */
import t from 'tap'
import {
  PredictionClient, toSignal, type Prediction, type PredictionRequest,
} from '../../src/client/index.js'
import { postJson, startServer } from '../helpers/start-server.js'
import { marketRequest, rng } from '../ws/ws-test-client.js'
import { RecordingLogger, waitFor } from './client-helpers.js'

function asRequest (o: Record<string, number | string>): PredictionRequest {
  return o as unknown as PredictionRequest
}

const kSignalLine = /^ML signal: (LONG|SHORT) \(confidence: \d\.\d\d, latency: \d+\.\dms\)$/
/** Bound on a connection to the in-process server: the client's 5 s default is tight on a loaded CI box. */
const kConnectMs = 20_000

// One server for the tests that leave it running (each uses its own symbols); the health and
// restart tests stop theirs, so they start their own.
const shared = await startServer(t, { max_batch_requests: 5 })

for (const format of ['binary', 'json'] as const) {
  t.test(`${format}: 300 concurrent calls pipelined on one socket, each answer its own`, async (t) => {
    const { url } = shared
    const client = new PredictionClient({ url, format, logger: null, timeoutMs: 10_000 })
    t.teardown(() => client.close())
    const hello = await client.waitForConnection(kConnectMs)
    t.equal(client.connected, true)
    t.equal(hello.model_version, 'xgboost_phase1_v2_calibrated')
    const rand = rng(format === 'binary' ? 1 : 2)
    const reqs = Array.from({ length: 300 }, (_v, i) => marketRequest(`CL_${format}_${i}`, rand))
    const answers = await Promise.all(reqs.map(r => client.predict(asRequest(r))))
    const twins = await Promise.all(reqs.map(r => postJson(`${url}/predict`, { ...r, symbol: `${r.symbol as string}_H` })))
    let same = 0
    for (let i = 0; i < reqs.length; i++) {
      if (answers[i]!.symbol === reqs[i]!.symbol && answers[i]!.probability_long === twins[i]!.body.probability_long) same++
    }
    t.equal(same, reqs.length, 'every call resolved with its own request\'s prediction')
    t.equal(client.inFlight, 0)
  })

  t.test(`${format}: predictBatch, per-item errors, and the hello's limits`, async (t) => {
    const { url } = shared
    const client = new PredictionClient({ url, format, logger: null, timeoutMs: 10_000 })
    t.teardown(() => client.close())
    await client.waitForConnection(kConnectMs)
    const results = await client.predictBatch([{ price: 10, symbol: 'B1' }, { price: -1 }, { price: 12, symbol: 'B3' }])
    t.match(results, [
      { ok: true, prediction: { symbol: 'B1' } },
      { ok: false, error: { code: 'ERR_REMOTE', wireCode: 'INVALID_ARGUMENT', detail: [{ loc: ['requests', 1, 'price'] }] } },
      { ok: true, prediction: { symbol: 'B3' } },
    ])
    t.same(await client.predictBatch([]), [])
    await t.rejects(client.predictBatch(new Array(6).fill({ price: 1 })), { code: 'ERR_CLIENT_INVALID_REQUEST' }, 'refused before sending')
    t.equal(client.connected, true, 'and the connection is untouched')
  })
}

t.test('server errors: ERR_REMOTE with the wire code; the fallback returns null and logs the bot\'s line', async (t) => {
  const { url } = shared
  const logger = new RecordingLogger()
  const client = new PredictionClient({ url, logger, timeoutMs: 5000 })
  t.teardown(() => client.close())
  await client.waitForConnection(kConnectMs)
  await t.rejects(client.predict({ price: -1 }), {
    name: 'RemoteError', code: 'ERR_REMOTE', wireCode: 'INVALID_ARGUMENT', statusCode: null,
    detail: [{ loc: ['price'], type: 'value_error.number.not_gt' }],
  })
  t.equal(await client.predictWithFallback({ price: Number.NaN }), null)
  t.same(logger.messages(), ['ML prediction failed (fallback mode): INVALID_ARGUMENT: price: field required'])

  const p = await client.predictWithFallback({ price: 612.5, symbol: 'LOGGED' })
  t.ok(p !== null)
  t.match(logger.messages()[1], kSignalLine, 'the bot\'s signal line')
  t.equal(logger.lines[1]!.level, 'info')
})

t.test('toSignal: the bot\'s rule', async (t) => {
  const p = (direction: 'LONG' | 'SHORT', confidence: number): Prediction => ({
    direction, confidence, probability_long: direction === 'LONG' ? confidence : 1 - confidence, model_version: 'v', symbol: 'S', latency_ms: 1,
  })
  t.same(toSignal(p('LONG', 0.72), { confidenceThreshold: 0.55, weight: 0.4 }), { source: 'ml_xgboost', score: 0.72, weight: 0.4 })
  t.same(toSignal(p('SHORT', 0.6)), { source: 'ml_xgboost', score: -0.6, weight: 0.4 }, 'defaults 0.55 / 0.4; SHORT is negative')
  t.equal(toSignal(p('LONG', 0.54)), null, 'below the threshold')
  t.same(toSignal(p('LONG', 0.55)), { source: 'ml_xgboost', score: 0.55, weight: 0.4 }, 'at the threshold')
  t.equal(toSignal(null), null, 'fallback mode')
  t.same(toSignal(p('SHORT', 0.9), { weight: 1 }), { source: 'ml_xgboost', score: -0.9, weight: 1 })
})

t.test('while the socket is down, calls go over HTTP (unless told not to)', async (t) => {
  const { url } = shared
  // A WebSocket URL the server does not upgrade: the socket never comes up, HTTP works.
  const client = new PredictionClient({ url, wsUrl: url.replace('http', 'ws') + '/not-ws', logger: null, timeoutMs: 5000, reconnect: { initialDelayMs: 1000 } })
  t.teardown(() => client.close())
  const p = await client.predict({ price: 612.5, symbol: 'VIA_HTTP' })
  t.equal(client.connected, false)
  t.match(p, { symbol: 'VIA_HTTP', model_version: 'xgboost_phase1_v2_calibrated', direction: /LONG|SHORT/ })
  const batch = await client.predictBatch([{ price: 1, symbol: 'H1' }, { price: -1 }])
  t.match(batch, [{ ok: true, prediction: { symbol: 'H1' } }, { ok: false, error: { code: 'ERR_REMOTE', wireCode: 'INVALID_ARGUMENT', statusCode: 422 } }])
  await t.rejects(client.predict({ price: -1 }), { code: 'ERR_REMOTE', wireCode: 'INVALID_ARGUMENT', statusCode: 422 })

  const strict = new PredictionClient({ url, wsUrl: url.replace('http', 'ws') + '/not-ws', httpFallback: false, logger: null })
  t.teardown(() => strict.close())
  await t.rejects(strict.predict({ price: 1 }), { code: 'ERR_CLIENT_DISCONNECTED' })
  await t.rejects(strict.waitForConnection(300), { code: 'ERR_CLIENT_DISCONNECTED' })
})

t.test('healthCheck: GET /health, never throws', async (t) => {
  const started = await startServer(t)
  const client = new PredictionClient({ url: started.url, logger: null })
  t.teardown(() => client.close())
  const up = await client.healthCheck()
  t.match(up, { healthy: true, statusCode: 200, body: { status: 'ok', model_loaded: true }, error: null })
  await started.server.close()
  const down = await client.healthCheck()
  t.match(down, { healthy: false, statusCode: null, body: null, error: { code: 'ERR_CLIENT_DISCONNECTED' } })
})

t.test('close(): calls in flight and later fail with ERR_CLIENT_CLOSED at once', async (t) => {
  const { url } = shared
  const client = new PredictionClient({ url, logger: null, timeoutMs: 10_000 })
  await client.waitForConnection(kConnectMs)
  const pending = Array.from({ length: 50 }, (_v, i) => client.predict({ price: 1 + i, symbol: `CLOSE_${i}` }).then(() => 'answered', (err: { code: string }) => err.code))
  const closing = client.close()
  const outcomes = await Promise.all(pending)
  t.ok(outcomes.every(o => o === 'ERR_CLIENT_CLOSED' || o === 'answered'), 'each call answered before the close or failed with ERR_CLIENT_CLOSED')
  t.ok(outcomes.includes('ERR_CLIENT_CLOSED'), 'calls still waiting were failed by close()')
  await closing
  t.equal(client.connected, false)
  await t.rejects(client.predict({ price: 1 }), { code: 'ERR_CLIENT_CLOSED' })
  await t.rejects(client.predictBatch([{ price: 1 }]), { code: 'ERR_CLIENT_CLOSED' })
  t.equal(await client.predictWithFallback({ price: 1 }), null)
  t.match(await client.healthCheck(), { healthy: false, error: { code: 'ERR_CLIENT_CLOSED' } })
  await client.close()
})

t.test('a server restart: calls fail fast while it is down, the client reconnects to the new one', async (t) => {
  const first = await startServer(t)
  const logger = new RecordingLogger()
  // A call timeout far above the fail-fast bound below, so that "refused at once" and "timed out"
  // stay apart even when a loaded machine slows the refusal down.
  const client = new PredictionClient({ url: first.url, logger, timeoutMs: 15_000, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } })
  t.teardown(() => client.close())
  await client.waitForConnection(kConnectMs)
  t.ok(await client.predictWithFallback({ price: 1, symbol: 'BEFORE' }))

  await first.server.close()
  await waitFor(() => !client.connected, 15_000, 'the client to see the disconnect')
  const started = Date.now()
  t.equal(await client.predictWithFallback({ price: 1 }), null, 'no server: fallback mode')
  const failedAfter = Date.now() - started
  t.ok(failedAfter < 5000, `failed fast (HTTP refused), not after the 15 s timeout (${failedAfter} ms)`)
  t.match(logger.messages().at(-1), /^ML prediction failed \(fallback mode\): disconnected/)
  t.ok(logger.messages().some(m => m.startsWith('ML service connection lost')), 'the loss is logged once')

  // A new server on the same port, as a restart would bring up. Binding can race the old
  // socket's release briefly: retried within a bound.
  let second: Awaited<ReturnType<typeof startServer>> | null = null
  for (let attempt = 0; second === null && attempt < 50; attempt++) {
    try {
      second = await startServer(t, { port: first.port })
    } catch {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  t.ok(second !== null, `a new server listens on port ${first.port}`)
  const hello = await client.waitForConnection(10_000)
  t.equal(hello.model_version, 'xgboost_phase1_v2_calibrated')
  t.equal(client.reconnects, 1)
  const p = await client.predict({ price: 1, symbol: 'AFTER' })
  t.equal(p.symbol, 'AFTER', 'served by the new server over the socket')
  t.ok(logger.messages().some(m => m.startsWith('ML service reconnected')))
})
