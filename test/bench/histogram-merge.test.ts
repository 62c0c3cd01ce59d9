import t from 'tap'
import { createHistogram, decodeHistogram, encodeHistogram, mergeEncoded, summarize } from '../../bench/lib/histogram.js'
import { mergeLoadResults, mergeThreadResults, runLoad } from '../../bench/lib/load-generator.js'
import type { ThreadResult } from '../../bench/lib/load-types.js'
import { checkConsistent } from './consistency.js'
import { testSpec } from './load-spec.js'
import { startStub } from './stub-server.js'

/** Deterministic, skewed latencies in µs: mostly 100-2000, a tail to ~2 s. */
function values (n: number, seed: number): number[] {
  let s = seed
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    const u = s / 4294967296
    out.push(Math.floor(100 * Math.exp(u * u * Math.log(20_000))))
  }
  return out
}

t.test('merging encoded per-thread histograms equals recording everything in one', async (t) => {
  const parts = [values(20_000, 1), values(5_000, 2), values(1, 3), [], values(50_000, 4)]
  const single = createHistogram()
  const encoded = parts.map((vs) => {
    const h = createHistogram()
    for (const v of vs) { h.recordValue(v); single.recordValue(v) }
    return encodeHistogram(h)
  })
  const merged = mergeEncoded(encoded)
  t.equal(merged.totalCount, parts.reduce((a, p) => a + p.length, 0), 'counts add')
  t.equal(merged.totalCount, single.totalCount)
  for (const q of [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]) {
    t.equal(merged.getValueAtPercentile(q), single.getValueAtPercentile(q), `p${q} identical`)
  }
  t.same(summarize(merged), summarize(single), 'summaries identical')
  t.equal(decodeHistogram(encodeHistogram(merged)).totalCount, merged.totalCount, 'round trip keeps the count')
})

t.test('thread results merge: counters add, histograms add, nothing dropped', async (t) => {
  const thread = (ok: number, non2xx: Record<string, number>, errors: Record<string, number>, timeouts: number, seed: number): ThreadResult => {
    const h = createHistogram()
    for (const v of values(ok, seed)) h.recordValue(v)
    const failed = Object.values(non2xx).reduce((a, b) => a + b, 0) + Object.values(errors).reduce((a, b) => a + b, 0) + timeouts
    return {
      counts: { sent: ok + failed, ok, non2xx, errors, timeouts, unsent: 0, intended: 0, sentInWindow: 0, connectErrors: 1, reconnects: 2 },
      latency: encodeHistogram(h), sendLag: null, windowMs: 1000, answerSpanMs: 1000, elu: 0.5, queuedForConnection: 0, requestsTotal: ok + failed,
    }
  }
  const r = mergeThreadResults(testSpec({ threads: 3, connections: 3 }), 'http://x', new Date().toISOString(), [
    thread(1000, { 503: 3 }, { ECONNRESET: 1 }, 2, 7),
    thread(2000, { 503: 1, 504: 4 }, {}, 0, 8),
    thread(0, {}, { EPROTO: 5 }, 1, 9),
  ], { cpuUs: 1e6, wallMs: 1000 })
  t.same(r.counts.non2xx, { 503: 4, 504: 4 })
  t.same(r.counts.errors, { ECONNRESET: 1, EPROTO: 5 })
  t.equal(r.counts.ok, 3000)
  t.equal(r.counts.timeouts, 3)
  t.equal(r.counts.connectErrors, 3)
  t.equal(r.counts.reconnects, 6)
  t.equal(r.latencyUs.count, 3000)
  t.equal(r.throughput, 3000, 'ok per second of window')
  checkConsistent(t, r, 'merged')
})

t.test('across real generator threads the counts add up', async (t) => {
  const stub = await startStub(t, () => 'ok')
  const r = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({ threads: 3, connections: 6, durationMs: 400 }))
  t.equal(r.perThread.length, 3, 'three threads reported')
  t.ok(r.perThread.every((p) => p.ok > 0), 'every thread did work')
  t.ok(r.counts.ok > 0)
  checkConsistent(t, r, 'three threads, closed loop')
  const open = await runLoad({ host: '127.0.0.1', port: stub.port }, testSpec({ threads: 2, connections: 4, mode: 'open', rate: 400, durationMs: 500 }))
  t.equal(open.perThread.length, 2)
  t.equal(open.counts.intended, 200, 'open loop: rate x window requests were due (2 threads interleaved)')
  checkConsistent(t, open, 'two threads, open loop')
})

t.test('rounds of one load merge into one result exactly', async (t) => {
  const round = (ok: number, spanMs: number, seed: number): ReturnType<typeof mergeThreadResults> => {
    const h = createHistogram()
    for (const v of values(ok, seed)) h.recordValue(v)
    return mergeThreadResults(testSpec({}), 'http://x', '2026-01-01T00:00:00.000Z', [{
      counts: { sent: ok + 1, ok, non2xx: { 503: 1 }, errors: {}, timeouts: 0, unsent: 0, intended: 0, sentInWindow: 0, connectErrors: 0, reconnects: 0 },
      latency: encodeHistogram(h), sendLag: null, windowMs: spanMs, answerSpanMs: spanMs, elu: 0.3, queuedForConnection: 0, requestsTotal: ok + 1,
    }], { cpuUs: 1000 * ok, wallMs: spanMs })
  }
  const a = round(3000, 1000, 11)
  const b = round(1000, 1000, 12)
  const m = mergeLoadResults([a, b])
  t.equal(m.counts.ok, 4000)
  t.same(m.counts.non2xx, { 503: 2 })
  t.equal(m.latencyUs.count, 4000, 'histograms add')
  const single = createHistogram()
  for (const v of [...values(3000, 11), ...values(1000, 12)]) single.recordValue(v)
  t.same(m.latencyUs, summarize(single), 'same as one histogram of both rounds')
  t.equal(m.throughput, 2000, 'all answers over all time, not the mean of the rounds\' rates')
  t.equal(m.spec.durationMs, a.spec.durationMs * 2)
  checkConsistent(t, m, 'merged rounds')
})
