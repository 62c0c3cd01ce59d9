/**
 * A bug thrown while an HTTP request is admitted (a fault injected into the service's submit, as
 * in ws-batch-exception.test.ts). Admission runs from setImmediate (the pipelining guard), where an
 * exception used to be uncaught and end the process. Now it costs that request its connection
 * (the bot sees a connection error and falls back), is counted as ERR_INTERNAL, and every other
 * request, on other connections and after it, is served.
 */
import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('an exception in admission closes that connection only; the server keeps serving', async (t) => {
  const { url, server } = await startServer(t, { workers: 1 })
  const service = server.service
  const submit = service.submit.bind(service)
  let calls = 0
  service.submit = (...args: Parameters<typeof submit>) => {
    if (++calls % 2 === 0) throw new Error('injected bug in submit')
    return submit(...args)
  }
  const single = await Promise.allSettled([1, 2, 3, 4].map((i) => postJson(`${url}/predict`, { price: 100 + i, symbol: `HX${i}` })))
  const answered = single.filter((r) => r.status === 'fulfilled' && r.value.status === 200).length
  const closed = single.filter((r) => r.status === 'rejected').length
  t.equal(answered, 2, 'the requests whose submit did not throw are answered')
  t.equal(closed, 2, 'the two whose submit threw lose their connection')
  const batch = await Promise.allSettled([postJson(`${url}/predict/batch`, { requests: [{ price: 1, symbol: 'HB_A' }, { price: 2, symbol: 'HB_B' }] })])
  t.equal(batch[0]!.status, 'rejected', 'a batch whose second item throws loses its connection (its first item was admitted)')

  service.submit = submit
  const after = await postJson(`${url}/predict`, { price: 100, symbol: 'HX_AFTER' })
  t.equal(after.status, 200, 'the server still serves')
  const metrics = await getJson(`${url}/metrics`)
  t.equal(metrics.body.errors_by_code.ERR_INTERNAL, 3, 'each bug counted once as ERR_INTERNAL')
})
