import type { Test } from 'tap'
import type { LoadResult } from '../../bench/lib/load-types.js'

/** The identities every result must satisfy, whatever the server did. */
export function checkConsistent (t: Test, r: LoadResult, name: string): void {
  const c = r.counts
  const non2xx = Object.values(c.non2xx).reduce((a, b) => a + b, 0)
  const errors = Object.values(c.errors).reduce((a, b) => a + b, 0)
  t.equal(c.ok + non2xx + errors + c.timeouts, c.sent, `${name}: ok + non-2xx + errors + timeouts = sent`)
  if (r.spec.mode === 'open') {
    t.equal(c.sent + c.unsent, c.intended, `${name}: sent + unsent = intended`)
    t.ok(c.sentInWindow <= c.sent, `${name}: sent in window <= sent`)
  } else {
    t.equal(c.unsent, 0, `${name}: closed loop has nothing unsent`)
  }
  t.equal(r.latencyUs.count, c.ok, `${name}: one latency sample per 2xx answer`)
  t.equal(r.perThread.reduce((a, p) => a + p.recorded, 0), r.latencyUs.count, `${name}: thread histograms add up to the merged one`)
  t.equal(r.perThread.reduce((a, p) => a + p.ok, 0), c.ok, `${name}: thread ok counts add up`)
  const l = r.latencyUs
  if (l.count > 0) {
    const order = [l.min, l.p50, l.p90, l.p95, l.p99, l.p999, l.max] as number[]
    t.ok(order.every((v, i) => i === 0 || order[i - 1]! <= v), `${name}: min <= p50 <= p90 <= p95 <= p99 <= p99.9 <= max (${order.join(' ')})`)
  }
}
