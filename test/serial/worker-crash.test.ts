/**
 * A worker thread dies during a load run: the pool replaces it and service carries on.
 *
 * The kill lands on a parked worker (the load pauses until nothing is in flight): terminating a
 * thread while onnxruntime-node is inside session.run aborts the whole process ("terminate called
 * after throwing an instance of 'Napi::Error'", an onnxruntime-node teardown hazard seen once in
 * CI). What happens to a batch that is at a worker when it dies is tested deterministically in
 * test/pool/shared-slots.test.ts and, for the batcher, test/batching/dynamic-batcher.test.ts.
 */
import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

for (const transport of ['shared-memory', 'message'] as const) {
  t.test(`${transport}: a worker that dies during a load run is replaced and service carries on`, async (t) => {
    const { url, server } = await startServer(t, { workers: 2, worker_transport: transport })
    const statuses: number[] = []
    let hung = 0
    let paused = false
    let parked = 0
    let resume: () => void = () => {}
    const resumed = new Promise<void>(resolve => { resume = resolve })
    const until = Date.now() + 60_000
    let stop = false
    const loops = Array.from({ length: 16 }, async (_, loop) => {
      let i = 0
      while (!stop && Date.now() < until) {
        if (paused) { parked++; await resumed }
        try {
          const r = await postJson(`${url}/predict`, { price: 500 + (i++ % 40), symbol: `K${loop}` })
          statuses.push(r.status)
        } catch { hung++ }
      }
    })
    await new Promise(resolve => setTimeout(resolve, 700))
    paused = true
    // Wait until every loop has its last answer and is parked: then no request is in flight, not
    // even one still on its way to the server (the batcher's depth alone cannot see those). Bounded
    // by time, not by a count of sleeps: on a loaded machine the 16 answers may take a while.
    const quiet = Date.now() + 20_000
    while (Date.now() < quiet && (parked < 16 || server.service.pending > 0)) await new Promise(resolve => setTimeout(resolve, 5))
    t.equal(parked, 16, 'every load loop is parked')
    t.equal(server.service.pending, 0, 'nothing in flight at the kill')
    const before = statuses.length
    await server.models.serving!.threads[0]!.terminate()
    paused = false
    resume()
    // At least 1.5 s of load after the kill, and until 50 more answers came (a slow machine takes
    // longer to get there; a server that stopped serving never does, and fails below).
    const atLeastUntil = Date.now() + 1500
    const atMostUntil = Date.now() + 30_000
    while (Date.now() < atMostUntil && (Date.now() < atLeastUntil || statuses.length - before <= 50)) await new Promise(resolve => setTimeout(resolve, 20))
    stop = true
    await Promise.all(loops)
    t.ok(statuses.length - before > 50, `load went on after the kill (${statuses.length - before} requests)`)
    t.equal(hung, 0, 'no request hung or lost its connection')
    // A batch posted to the dead worker's slot before the pool noticed the death is answered 500
    // (its requests only); everything else is 200.
    const failed = statuses.filter(s => s === 500).length
    t.ok(statuses.every(s => s === 200 || s === 500), 'every answer is 200 or 500')
    t.ok(failed <= 64, `at most one batch failed (${failed} of ${statuses.length})`)
    t.equal((await getJson(`${url}/metrics`)).body.errors_by_code.ERR_INFERENCE ?? 0, failed, 'failures counted under ERR_INFERENCE')
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => postJson(`${url}/predict`, { price: 600 + i, symbol: `A${i}` })))
    t.ok(after.every(r => r.status === 200), 'afterwards every request succeeds')
    t.equal((await getJson(`${url}/health`)).body.workers, 2, 'both workers serve')
  })
}

t.test('both transports give identical answers', async (t) => {
  const shared = await startServer(t, { workers: 2, worker_transport: 'shared-memory' })
  const message = await startServer(t, { workers: 2, worker_transport: 'message' })
  for (let i = 0; i < 30; i++) {
    const body = { price: 600 + i * 0.37, volume: 100 + i, btc_price: 60_000 + i * 13, symbol: `T${i % 5}`, timestamp_ms: 1_770_000_000_000 + i * 60_000 }
    const [a, b] = await Promise.all([postJson(`${shared.url}/predict`, body), postJson(`${message.url}/predict`, body)])
    t.equal(a.body.probability_long, b.body.probability_long, `request ${i}`)
  }
})
