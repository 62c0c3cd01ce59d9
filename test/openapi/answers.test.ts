/**
 * Every route and status the tests can provoke on the real server, checked against the OpenAPI
 * document that server serves at /openapi.json: the body validates against the route's schema
 * for that status, the headers (Retry-After, WWW-Authenticate, Allow) are the documented ones,
 * and every path and method of the document was exercised.
 */
import t from 'tap'
import { InferenceGate } from '../helpers/inference-gate.js'
import { OpenApiChecker, type Answer } from '../helpers/openapi-check.js'
import { startServer } from '../helpers/start-server.js'

const kToken = 'openapi-test-token'
const kGood = { price: 612.5, open: 611, high: 613, low: 610.5, volume: 10, symbol: 'DOCUSDT' }

interface Call {
  readonly method: string
  readonly path: string
  readonly body?: string
  readonly token?: string
}

async function send (base: string, call: Call): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (call.body !== undefined) headers['content-type'] = 'application/json'
  if (call.token !== undefined) headers.authorization = `Bearer ${call.token}`
  const res = await fetch(base + call.path, {
    method: call.method, headers, body: call.body, signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  let body: unknown = text
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text)
  return { status: res.status, headers: res.headers, body }
}

t.test('every answer matches the served document', async (t) => {
  const { url } = await startServer(t, { admin_token: kToken, max_body_bytes: 4096, max_batch_requests: 5 })
  const doc = (await send(url, { method: 'GET', path: '/openapi.json' })).body as Record<string, any>
  const checker = new OpenApiChecker(doc)
  const seen = new Set<string>()
  const expectAnswer = async (call: Call, status: number): Promise<Answer> => {
    const answer = await send(url, call)
    t.equal(answer.status, status, `${call.method} ${call.path} answers ${status}`)
    t.same(checker.check(call.method, call.path, answer), [], `${call.method} ${call.path} ${answer.status} matches the document`)
    seen.add(`${call.method.toLowerCase()} ${call.path}`)
    return answer
  }
  const json = JSON.stringify

  await expectAnswer({ method: 'POST', path: '/predict', body: json(kGood) }, 200)
  await expectAnswer({ method: 'POST', path: '/predict', body: '{' }, 400)
  await expectAnswer({ method: 'POST', path: '/predict', body: '{}' }, 422)
  await expectAnswer({ method: 'POST', path: '/predict', body: json({ ...kGood, price: -1, symbol: 'bad symbol!' }) }, 422)
  await expectAnswer({ method: 'POST', path: '/predict', body: json({ ...kGood, pad: 'x'.repeat(5000) }) }, 413)
  await expectAnswer({ method: 'GET', path: '/predict' }, 405)

  const batch = await expectAnswer({ method: 'POST', path: '/predict/batch', body: json({ requests: [kGood, {}, { ...kGood, volume: -1 }] }) }, 200)
  t.equal((batch.body as { predictions: unknown[] }).predictions.length, 3)
  await expectAnswer({ method: 'POST', path: '/predict/batch', body: json({ requests: Array(6).fill(kGood) }) }, 422)
  await expectAnswer({ method: 'POST', path: '/predict/batch', body: 'nope' }, 400)
  await expectAnswer({ method: 'DELETE', path: '/predict/batch' }, 405)

  await expectAnswer({ method: 'GET', path: '/health' }, 200)
  const detailed = await expectAnswer({ method: 'GET', path: '/health', token: kToken }, 200)
  t.type((detailed.body as { model_path?: unknown }).model_path, 'string', 'the admin token adds model_path')
  await expectAnswer({ method: 'GET', path: '/health/live' }, 200)
  await expectAnswer({ method: 'GET', path: '/health/ready' }, 200)
  await expectAnswer({ method: 'POST', path: '/health/ready' }, 405)
  await expectAnswer({ method: 'GET', path: '/metrics' }, 200)
  await expectAnswer({ method: 'GET', path: '/metrics/prometheus' }, 200)
  await expectAnswer({ method: 'PUT', path: '/metrics' }, 405)

  await expectAnswer({ method: 'POST', path: '/admin/reload' }, 401)
  await expectAnswer({ method: 'POST', path: '/admin/reload', token: 'wrong' }, 401)
  await expectAnswer({ method: 'POST', path: '/admin/reload', token: kToken }, 200)
  await expectAnswer({ method: 'POST', path: '/admin/reload', token: kToken, body: json({ model_path: '../../etc/passwd' }) }, 422)
  await expectAnswer({ method: 'POST', path: '/admin/reload', token: kToken, body: json({ model_path: 'missing.onnx' }) }, 422)
  await expectAnswer({ method: 'POST', path: '/admin/shadow', token: kToken }, 422)
  await expectAnswer({ method: 'POST', path: '/admin/shadow', token: kToken, body: json({ model_path: 'xgboost_phase1_v1.onnx' }) }, 200)
  await expectAnswer({ method: 'DELETE', path: '/admin/shadow', token: kToken }, 200)
  await expectAnswer({ method: 'DELETE', path: '/admin/shadow' }, 401)

  for (const path of ['/openapi.json', '/asyncapi.json', '/schemas/prediction.fbs', '/docs']) {
    await expectAnswer({ method: 'GET', path }, 200)
  }
  await expectAnswer({ method: 'POST', path: '/openapi.json' }, 405)

  // Every path and method the document names was exercised (so none is documented but absent).
  await expectAnswer({ method: 'GET', path: '/no/such/route' }, 404)
  const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`))
  t.same(documented.filter((r) => !seen.has(r)), [], 'every documented route was called')
  t.ok(seen.has('get /no/such/route'))
})

t.test('overload (503 + Retry-After) and deadline (504) answers match the document', async (t) => {
  const { url, server } = await startServer(t, { max_queue_size: 2, max_batch_size: 1, workers: 1 })
  const checker = new OpenApiChecker((await send(url, { method: 'GET', path: '/openapi.json' })).body as Record<string, any>)
  const gate = new InferenceGate(server.service.currentModel!)
  const calls = Array.from({ length: 8 }, (_, i) => send(url, {
    method: 'POST', path: '/predict', body: JSON.stringify({ ...kGood, symbol: `S${i}`, deadline_ms: 300 }),
  }))
  // Queued requests expire while the gate holds the worker; then the held batch is released.
  await new Promise((resolve) => setTimeout(resolve, 800))
  gate.open()
  const answers = await Promise.all(calls)
  for (const a of answers) t.same(checker.check('POST', '/predict', a), [], `answer ${a.status} matches`)
  const statuses = answers.map((a) => a.status)
  t.ok(statuses.includes(503), `some were shed (${statuses.join(',')})`)
  t.ok(answers.some((a) => a.status === 503 && a.headers.get('retry-after') === '1'), 'shed answers carry Retry-After')
  t.ok(statuses.includes(504), `some expired (${statuses.join(',')})`)
})

t.test('without a model: 503 answers match the document', async (t) => {
  const { url } = await startServer(t, { require_model: false, model_path: 'models/does-not-exist.onnx' })
  const checker = new OpenApiChecker((await send(url, { method: 'GET', path: '/openapi.json' })).body as Record<string, any>)
  for (const [call, status] of [
    [{ method: 'POST', path: '/predict', body: JSON.stringify(kGood) }, 503],
    [{ method: 'POST', path: '/predict/batch', body: JSON.stringify({ requests: [kGood] }) }, 200],
    [{ method: 'GET', path: '/health' }, 503],
    [{ method: 'GET', path: '/health/ready' }, 503],
  ] as const) {
    const answer = await send(url, call)
    t.equal(answer.status, status, `${call.method} ${call.path}`)
    t.same(checker.check(call.method, call.path, answer), [], `${call.method} ${call.path} ${answer.status} matches the document`)
  }
})
