import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

for (const transport of ['shared-memory', 'message'] as const) {
  t.test(`${transport}: a worker killed under load costs only its batch, answered INTERNAL at once`, async (t) => {
    const { url, server } = await startServer(t, { workers: 2, worker_transport: transport })
    const statuses: number[] = []
    let hung = 0
    const until = Date.now() + 3000
    let killed = false
    const loops = Array.from({ length: 16 }, async (_, loop) => {
      let i = 0
      while (Date.now() < until) {
        try {
          const r = await postJson(`${url}/predict`, { price: 500 + (i++ % 40), symbol: `K${loop}` })
          statuses.push(r.status)
          if (r.status === 500) t.match(r.body, { detail: 'Inference failed' })
        } catch { hung++ }
      }
    })
    await new Promise(resolve => setTimeout(resolve, 700))
    // Kill one worker thread mid-flight, as a native crash or OOM would.
    await server.service.currentModel!.threads[0]!.terminate()
    killed = true
    await Promise.all(loops)
    t.ok(killed)
    t.equal(hung, 0, 'no request hung or lost its connection')
    const failed = statuses.filter(s => s === 500).length
    const ok = statuses.filter(s => s === 200).length
    t.equal(ok + failed, statuses.length, 'every answer is 200 or 500, nothing else')
    t.ok(failed <= 64, `only the killed worker's batch failed (${failed} of ${statuses.length})`)
    t.ok(ok > failed, 'the other requests carried on')
    // The pool replaced the worker: the server serves on, with all its workers.
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => postJson(`${url}/predict`, { price: 600 + i, symbol: `A${i}` })))
    t.ok(after.every(r => r.status === 200), 'afterwards every request succeeds')
    t.equal((await getJson(`${url}/health`)).body.workers, 2)
    t.equal((await getJson(`${url}/metrics`)).body.errors_by_code.ERR_INFERENCE ?? 0, failed, 'failures counted under ERR_INFERENCE')
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
