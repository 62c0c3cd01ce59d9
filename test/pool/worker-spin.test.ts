/**
 * worker_spin_us: a polling worker answers exactly what a sleeping one answers, takes the batches
 * posted while it polls, and still stops at once on shutdown (the poll watches for STOP too).
 */
import t from 'tap'
import { postJson, startServer } from '../helpers/start-server.js'

t.test('a polling worker gives the same answers and shuts down promptly', async (t) => {
  const polling = await startServer(t, { workers: 1, worker_spin_us: 2000 })
  const sleeping = await startServer(t, { workers: 1 })
  for (let i = 0; i < 40; i++) {
    const body = { price: 600 + i * 0.37, volume: 100 + i, symbol: `SPIN${i % 3}` }
    const [a, b] = await Promise.all([postJson(`${polling.url}/predict`, body), postJson(`${sleeping.url}/predict`, body)])
    t.equal(a.status, 200)
    t.equal(a.body.probability_long, b.body.probability_long, `request ${i}`)
  }
  // Back to back, so that most batches arrive while the worker is still polling.
  const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => postJson(`${polling.url}/predict`, { price: 700 + i, symbol: 'SPIN_B' })))
  t.ok(burst.every(r => r.status === 200), 'a burst is served')
  const started = Date.now()
  await polling.server.close()
  t.ok(Date.now() - started < 10_000, `closed in ${Date.now() - started} ms`)
})
