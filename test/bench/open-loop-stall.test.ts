/**
 * The reason the bench exists (coordinated omission, SERVING-NOTES §4): a server that stops for
 * 300 ms once. Open loop at a constant rate charges the stall to every request it delayed, so it
 * shows in the p99.9; a closed loop's per-request view sees it in one request only, so its p99.9
 * does not. The thresholds come from the stall itself, not from the machine's speed; the stall is
 * long enough that a loaded CI machine's own hiccups (a few requests of tens of ms) stay far below
 * them.
 */
import t from 'tap'
import { runLoad } from '../../bench/lib/load-generator.js'
import { checkConsistent } from './consistency.js'
import { testSpec } from './load-spec.js'
import { startStub } from './stub-server.js'

const kStallMs = 300

t.test(`open loop: a ${kStallMs} ms stall shows in the p99.9`, async (t) => {
  // 1000/s for 2 s after 200 ms of warm-up; request 1000 (about 1 s in) stops the server.
  const stub = await startStub(t, (n) => (n === 1000 ? { stallMs: kStallMs } : 'ok'))
  const r = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({
    mode: 'open', rate: 1000, connections: 4, warmupMs: 200, durationMs: 2000,
  }))
  checkConsistent(t, r, 'open loop')
  t.ok(stub.count() >= 1000, 'the stall happened')
  t.equal(r.counts.intended, 2000)
  t.ok(r.latencyUs.max! >= kStallMs * 1000 * 0.95, `max ${r.latencyUs.max} us covers the stall`)
  t.ok(r.latencyUs.p999! >= kStallMs * 1000 * 0.9, `p99.9 ${r.latencyUs.p999} us >= ~${kStallMs} ms: the stall is charged to the requests it delayed`)
  t.ok(r.sendLagUs !== null && r.sendLagUs.max! >= kStallMs * 1000 * 0.5, 'requests due during the stall went out late (send lag)')
  t.ok(r.generator.queuedForConnection > 0, `and waited for a free connection (${r.generator.queuedForConnection})`)
})

t.test('closed loop: the same stall is one slow request, invisible at p99.9', async (t) => {
  // One connection, 4000 measured requests: the stall is 1 sample of 4000, above rank 99.9%.
  // No warm-up: on a fast machine 100 ms of warm-up can send 1500 requests, and the stall would
  // then fall outside the measured ones.
  const stub = await startStub(t, (n) => (n === 1500 ? { stallMs: kStallMs } : 'ok'))
  const r = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({
    mode: 'closed', connections: 1, warmupMs: 0, durationMs: 60_000, maxRequests: 4000,
  }))
  checkConsistent(t, r, 'closed loop')
  t.equal(r.counts.sent, 4000)
  t.ok(stub.count() >= 1500, 'the stall happened')
  t.ok(r.latencyUs.max! >= kStallMs * 1000 * 0.95, `max ${r.latencyUs.max} us is the one stalled request`)
  t.ok(r.latencyUs.p999! < kStallMs * 1000 * 0.9, `p99.9 ${r.latencyUs.p999} us does not show it (coordinated omission)`)
})
