import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('shutdown_grace_ms: readiness goes first, requests are still served, then the drain', async (t) => {
  // The two requests below must land inside the grace period: a few ms normally, and the period
  // is long enough that a stalled CI machine does not push the second past it (a refused fetch).
  const { url, server } = await startServer(t, { shutdown_grace_ms: 5000 })
  t.equal((await getJson(`${url}/health/ready`)).status, 200)
  const closing = server.close('SIGTERM')
  const ready = await getJson(`${url}/health/ready`)
  t.equal(ready.status, 503, 'not ready as soon as the shutdown starts')
  t.equal(ready.body.detail, 'Shutting down')
  const served = await postJson(`${url}/predict`, { price: 612.5 })
  t.equal(served.status, 200, 'but still serving during the grace period')
  await closing
  await t.rejects(fetch(`${url}/health/live`, { signal: AbortSignal.timeout(5000) }), 'closed after the grace period and the drain')
})

t.test('a drain that times out fails what is left at once instead of hanging', async (t) => {
  const { url, server } = await startServer(t, { shutdown_timeout_ms: 0, workers: 1, max_batch_size: 1 })
  const burst = Array.from({ length: 200 }, (_, i) => postJson(`${url}/predict`, { price: 500 + i, symbol: `D${i}` }).then(r => r.status, () => -1))
  // Close only once requests are really queued behind the single worker (bounded by time, not by a
  // count of sleeps, so that a slow machine admitting the burst slowly still gets there).
  const until = Date.now() + 30_000
  while (Date.now() < until && server.service.pending < 20) await new Promise(resolve => setTimeout(resolve, 5))
  t.ok(server.service.pending >= 20, `requests in flight at the close (${server.service.pending})`)
  const started = performance.now()
  await server.close('SIGTERM')
  const statuses = await Promise.all(burst)
  t.ok(performance.now() - started < 10_000, 'close returned')
  t.equal(server.service.pending, 0, 'nothing left unanswered in the server')
  t.ok(statuses.includes(500), 'what the timed-out drain left was answered 500 at once')
  t.ok(statuses.every(s => [200, 500, 503, -1].includes(s)), `every request ended: ${[...new Set(statuses)].join(', ')}`)
})
