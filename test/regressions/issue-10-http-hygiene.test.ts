/**
 * Issue 10, item 6, over real HTTP (raw sockets where the framing matters):
 * - differing duplicate Content-Length headers are refused 400 and the connection closed
 *   (RFC 9112 §6.3); the uWS build we ship framed the body by the first one;
 * - the Authorization scheme is case-insensitive (RFC 9110 §11.1): `bearer x` is accepted;
 * - answers during shutdown (grace period and drain) carry `Connection: close` and the server
 *   closes the connection after them, so kept-alive clients reconnect instead of meeting a reset;
 * - /health without the admin token shows the model file's name and a stable error code, never
 *   the absolute path or the loader's message.
 */
import { connect, type Socket } from 'node:net'
import { basename, resolve } from 'node:path'
import t from 'tap'
import { getJson, startServer } from '../helpers/start-server.js'

interface Exchange { text: string, closed: boolean }

/** Writes `data` on a fresh connection; resolves with what came back once closed or after `ms`. */
function exchange (port: number, data: string, ms = 5_000): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => { socket.destroy(); resolve({ text, closed: false }) }, ms)
    socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
    socket.on('error', () => { /* followed by close */ })
    socket.on('close', () => { clearTimeout(timer); resolve({ text, closed: true }) })
    socket.write(data)
  })
}

function post (path: string, body: string, lengths: readonly number[], extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\n${lengths.map(n => `Content-Length: ${n}\r\n`).join('')}${extra}\r\n${body}`
}

t.test('differing duplicate Content-Length: 400, connection closed, nothing admitted', async (t) => {
  const { server, port } = await startServer(t)
  const body = JSON.stringify({ price: 100, symbol: 'DUP' })
  const refused = await exchange(port, post('/predict', body, [body.length, body.length + 5]))
  t.match(refused.text, /^HTTP\/1\.1 400 /, '400')
  t.match(refused.text, /\r\nConnection: close\r\n/i, 'Connection: close')
  t.match(refused.text, /"detail":"Conflicting Content-Length headers"/)
  t.ok(refused.closed, 'and closed')
  t.notOk(server.service.features.has('DUP'), 'nothing admitted')

  // The classic smuggling shape: the first length frames an empty body, the rest is a request.
  const smuggled = post('/predict', JSON.stringify({ price: 1, symbol: 'SMUG' }), [JSON.stringify({ price: 1, symbol: 'SMUG' }).length])
  const attack = await exchange(port, post('/predict/batch', smuggled, [0, smuggled.length]))
  t.notMatch(attack.text, /HTTP\/1\.1 200 /, 'no answer for a smuggled request')
  t.ok(attack.closed)
  t.notOk(server.service.features.has('SMUG'), 'the smuggled request was never admitted')

  const same = await exchange(port, post('/predict', body, [body.length, body.length], 'Connection: close\r\n'))
  t.match(same.text, /^HTTP\/1\.1 200 /, 'identical repeats are one length (RFC 9110 §8.6)')
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).json() as { errors_by_code: Record<string, number> }
  t.equal(metrics.errors_by_code.ERR_BAD_FRAMING, 2, 'both refusals counted under their own code')
  t.equal(metrics.errors_by_code.ERR_INTERNAL ?? 0, 0, 'not as INTERNAL')
})

t.test('the Authorization scheme is case-insensitive', async (t) => {
  const { url } = await startServer(t, { admin_token: 'tok-123' })
  const del = (authorization: string): Promise<number> =>
    fetch(`${url}/admin/shadow`, { method: 'DELETE', headers: { authorization }, signal: AbortSignal.timeout(10_000) }).then(async r => { await r.text(); return r.status })
  t.equal(await del('Bearer tok-123'), 200)
  t.equal(await del('bearer tok-123'), 200, 'lower case')
  t.equal(await del('BEARER  tok-123'), 200, 'upper case, two spaces')
  t.equal(await del('bearer tok-12'), 401, 'the token itself is still exact')
  t.equal(await del('Basic tok-123'), 401, 'another scheme')
})

t.test('answers while draining close their connection', async (t) => {
  const { server, port } = await startServer(t, { shutdown_grace_ms: 3_000 })
  const closing = server.close('SIGTERM')
  const body = JSON.stringify({ price: 100, symbol: 'DR' })
  const served = await exchange(port, post('/predict', body, [body.length]))
  t.match(served.text, /^HTTP\/1\.1 200 /, 'still served in the grace period')
  t.match(served.text, /\r\nConnection: close\r\n/i, 'with Connection: close')
  t.ok(served.closed, 'and the server closed the connection after it')
  const health = await exchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(health.text, /\r\nConnection: close\r\n/i, '/health too')
  t.ok(health.closed)
  await closing
})

t.test('/health: file name and error code for everyone, path and message with the admin token', async (t) => {
  const { url } = await startServer(t, { admin_token: 'tok-9' })
  const modelPath = resolve('models/xgboost_phase1_v2_calibrated.onnx')
  const anonymous = await getJson(`${url}/health`)
  t.equal(anonymous.body.model_file, basename(modelPath))
  t.equal(anonymous.body.model_error, null)
  t.notOk('model_path' in anonymous.body, 'no path without the token')

  const failed = await fetch(`${url}/admin/reload`, {
    method: 'POST', headers: { authorization: 'Bearer tok-9' }, body: JSON.stringify({ model_path: 'no-such-model.onnx' }), signal: AbortSignal.timeout(30_000),
  })
  t.equal(failed.status, 422)
  await failed.text()

  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  const after = JSON.parse(text)
  t.equal(after.model_error, 'ERR_MODEL_LOAD', 'a stable code')
  t.notOk(text.includes('/'), 'no path of any kind in the anonymous /health')
  t.notOk('model_error_detail' in after)

  const admin = await fetch(`${url}/health`, { headers: { authorization: 'bearer tok-9' }, signal: AbortSignal.timeout(10_000) })
  const detailed = await admin.json() as Record<string, unknown>
  t.match(detailed, { model_error: 'ERR_MODEL_LOAD', model_error_detail: /no-such-model\.onnx/, model_file: basename(modelPath) })
  t.match(detailed.model_path, /models\/xgboost_phase1_v2_calibrated\.onnx$/, 'the path with the token')
})
