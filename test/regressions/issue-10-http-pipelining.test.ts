/**
 * Issue 10, item 3: HTTP/1.1 pipelining over a raw socket. uWS closes a connection on which a
 * request arrives while the previous response is still pending (uWebSockets src/HttpContext.h,
 * "denying async pipelining"); the pending request had already been admitted and had changed its
 * symbol's state, and its answer was lost. Now (docs/architecture.md, "HTTP pipelining"): a request sent before
 * the previous answer is served after it, in order; two requests already in one read close the
 * connection before either is admitted, so no state changes unanswered.
 */
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { InferenceGate } from '../helpers/inference-gate.js'
import { startServer } from '../helpers/start-server.js'

interface RawResponse { status: number, headers: string, body: string }

/** A raw keep-alive connection that splits what arrives into HTTP responses (Content-Length framed). */
class RawHttp {
  readonly socket: Socket
  readonly responses: RawResponse[] = []
  closed = false
  private buffer = ''

  constructor (port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.setNoDelay(true)
    this.socket.on('data', (d: Buffer) => { this.buffer += d.toString('latin1'); this.split() })
    this.socket.on('close', () => { this.closed = true })
    this.socket.on('error', () => { /* followed by close */ })
  }

  private split (): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      const headers = this.buffer.slice(0, end)
      const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0)
      if (this.buffer.length < end + 4 + length) return
      this.responses.push({ status: Number(headers.slice(9, 12)), headers, body: this.buffer.slice(end + 4, end + 4 + length) })
      this.buffer = this.buffer.slice(end + 4 + length)
    }
  }

  /** Resolves when `n` responses arrived or the connection closed, or after `ms`. */
  async waitFor (n: number, ms = 20_000): Promise<void> {
    const until = Date.now() + ms
    while (this.responses.length < n && !this.closed && Date.now() < until) await sleep(5)
  }
}

function sleep (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }

function predictRequest (body: Record<string, unknown>): string {
  const text = JSON.stringify(body)
  return `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
}

t.test('a request sent before the previous answer is served after it, in order', async (t) => {
  const { server, port } = await startServer(t)
  const gate = new InferenceGate(server.service.currentModel!)
  const conn = new RawHttp(port)
  t.teardown(() => { conn.socket.destroy() })
  conn.socket.write(predictRequest({ symbol: 'PA', price: 100 }))
  // The first is admitted and held at the worker: its response is pending when the second comes.
  const until = Date.now() + 20_000
  while (!server.service.features.has('PA') && Date.now() < until) await sleep(5)
  t.ok(server.service.features.has('PA'), 'the first request was admitted')
  conn.socket.write(predictRequest({ symbol: 'PB', price: 200 }))
  await sleep(200)
  t.notOk(conn.closed, 'the connection stays open while the first answer is pending')
  gate.open()
  await conn.waitFor(2)
  t.equal(conn.responses.length, 2, 'both answered')
  t.same(conn.responses.map(r => r.status), [200, 200])
  t.same(conn.responses.map(r => JSON.parse(r.body).symbol), ['PA', 'PB'], 'in order')
  t.ok(server.service.features.has('PB'), 'the second was admitted after the first was answered')
  // The connection is still usable afterwards.
  conn.socket.write(predictRequest({ symbol: 'PC', price: 300 }))
  await conn.waitFor(3)
  t.equal(conn.responses[2]?.status, 200, 'a third request on the same connection')
  t.notOk(conn.closed)
})

t.test('two requests in one write: closed before either is admitted', async (t) => {
  const { server, port } = await startServer(t)
  const before = server.metrics.predictionsTotal
  const conn = new RawHttp(port)
  t.teardown(() => { conn.socket.destroy() })
  conn.socket.write(predictRequest({ symbol: 'QA', price: 100 }) + predictRequest({ symbol: 'QB', price: 200 }))
  await conn.waitFor(2)
  await sleep(100)
  t.ok(conn.closed, 'uWS closes the connection (it refuses async pipelining)')
  t.equal(conn.responses.length, 0, 'no answer')
  t.notOk(server.service.features.has('QA'), 'the first changed no state')
  t.notOk(server.service.features.has('QB'), 'the second changed no state')
  t.equal(server.service.pending, 0, 'nothing in flight')
  t.equal(server.metrics.predictionsTotal, before, 'nothing predicted')
  // Sent one at a time, the same requests are served.
  const again = new RawHttp(port)
  t.teardown(() => { again.socket.destroy() })
  again.socket.write(predictRequest({ symbol: 'QA', price: 100 }))
  await again.waitFor(1)
  t.equal(again.responses[0]?.status, 200)
})

t.test('a pipelined batch waits for the answer before it, too', async (t) => {
  const { server, port } = await startServer(t)
  const gate = new InferenceGate(server.service.currentModel!)
  const conn = new RawHttp(port)
  t.teardown(() => { conn.socket.destroy() })
  const batch = JSON.stringify({ requests: [{ symbol: 'RB', price: 1 }, { symbol: 'RB', price: 2 }] })
  conn.socket.write(`POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`)
  const until = Date.now() + 20_000
  while (!server.service.features.has('RB') && Date.now() < until) await sleep(5)
  conn.socket.write(predictRequest({ symbol: 'RC', price: 3 }))
  await sleep(200)
  gate.open()
  await conn.waitFor(2)
  t.same(conn.responses.map(r => r.status), [200, 200])
  t.equal(JSON.parse(conn.responses[0]!.body).predictions.length, 2, 'the batch first')
  t.equal(JSON.parse(conn.responses[1]!.body).symbol, 'RC', 'then the single request')
})
