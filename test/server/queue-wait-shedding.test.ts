/**
 * max_queue_wait_ms over real HTTP: with the one worker held at a gate, a request waits in the
 * queue; once it has waited longer than the setting, a new request is shed at once with 503 and
 * Retry-After (although the queue holds one request, far below max_queue_size), and the waiting
 * one is still answered when the worker frees.
 */
import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('a queue older than max_queue_wait_ms sheds new requests with 503, and answers what it holds', async (t) => {
  const { url, server } = await startServer(t, { workers: 1, max_queue_wait_ms: 50 })
  const model = server.service.currentModel!
  const run = model.run.bind(model)
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  model.dispatch = (buffer, rows, completion) => {
    gate.then(() => run(buffer, rows)).then((b) => { completion.batchDone(b) }, (e: unknown) => { completion.batchFailed(e) })
  }
  const first = postJson(`${url}/predict`, { price: 1, symbol: 'QW_A' }) // at the worker, held
  const waitUntil = Date.now() + 20_000
  while (server.service.batcher.depth < 1 && Date.now() < waitUntil) await new Promise(resolve => setTimeout(resolve, 2))
  const second = postJson(`${url}/predict`, { price: 1, symbol: 'QW_B' }) // waits in the queue
  while (server.service.batcher.queueDepth < 1 && Date.now() < waitUntil) await new Promise(resolve => setTimeout(resolve, 2))
  t.equal(server.service.batcher.queueDepth, 1, 'one request waiting')
  await new Promise(resolve => setTimeout(resolve, 80))
  const shed = await postJson(`${url}/predict`, { price: 1, symbol: 'QW_C' })
  t.equal(shed.status, 503, 'shed: the oldest waiting request is over 50 ms old')
  t.equal(shed.body.detail, 'Overloaded')
  t.ok(Number(shed.headers.get('retry-after')) >= 1, 'with Retry-After')
  open()
  t.equal((await first).status, 200)
  t.equal((await second).status, 200, 'the waiting request is answered, not dropped')
  t.equal((await postJson(`${url}/predict`, { price: 1, symbol: 'QW_D' })).status, 200, 'admitted again once nothing waits')
  const metrics = (await getJson(`${url}/metrics`)).body
  t.equal(metrics.errors_by_code.ERR_OVERLOADED, 1)
})
