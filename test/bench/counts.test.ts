import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { runLoad } from '../../bench/lib/load-generator.js'
import { checkConsistent } from './consistency.js'
import { testSpec } from './load-spec.js'
import { startStub } from './stub-server.js'

t.test('non-2xx, socket errors and timeouts are counted, never dropped', async (t) => {
  // Request 40 is never answered (a timeout); every 5th is a 503; every 7th has its socket destroyed.
  const stub = await startStub(t, (n) => (n === 40 ? 'silent' : n % 5 === 0 ? 'status503' : n % 7 === 0 ? 'destroy' : 'ok'))
  // timeoutMs well above any honest answer on a loaded machine, so the silent request is the timeout.
  // A request count, not a duration, ends the closed loop: request 40 is then sent however slow the
  // machine (durationMs is only a bound).
  const closed = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({ connections: 4, warmupMs: 0, durationMs: 30_000, maxRequests: 150, timeoutMs: 1500 }))
  t.ok(stub.count() >= 40, `request 40 was sent (${stub.count()} requests)`)
  checkConsistent(t, closed, 'closed loop')
  t.ok((closed.counts.non2xx['503'] ?? 0) > 0, `503s counted by status (${JSON.stringify(closed.counts.non2xx)})`)
  t.ok(Object.values(closed.counts.errors).reduce((a, b) => a + b, 0) > 0, `socket errors counted by code (${JSON.stringify(closed.counts.errors)})`)
  t.ok(closed.counts.timeouts >= 1, `the unanswered request is a timeout (${closed.counts.timeouts})`)
  t.ok(closed.counts.reconnects > 0, 'connections were replaced')

  const open = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({ mode: 'open', rate: 500, connections: 4, warmupMs: 0, durationMs: 600, timeoutMs: 1500 }))
  checkConsistent(t, open, 'open loop')
  t.ok((open.counts.non2xx['503'] ?? 0) > 0, '503s counted in open loop')
})

t.test('a refused target is reported, bounded, and sends nothing', async (t) => {
  // A port that was just free: bind, read it, close.
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => { resolve() }))
  const closed = await runLoad({ host: '127.0.0.1', port }, testSpec({ connections: 2, durationMs: 300, timeoutMs: 200 }))
  t.equal(closed.counts.sent, 0)
  t.ok(closed.counts.connectErrors >= 2, `connection failures counted (${closed.counts.connectErrors})`)
  checkConsistent(t, closed, 'refused, closed loop')
  const open = await runLoad({ host: '127.0.0.1', port }, testSpec({ mode: 'open', rate: 200, connections: 2, durationMs: 300, timeoutMs: 200 }))
  t.equal(open.counts.sent, 0)
  t.equal(open.counts.unsent, open.counts.intended, 'every due request is reported unsent')
  t.ok(open.counts.intended >= 50)
  t.equal(open.keptRate, false, 'the rate was not kept, and the result says so')
})
