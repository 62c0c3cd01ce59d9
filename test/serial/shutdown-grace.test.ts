import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('shutdown_grace_ms: readiness goes first, requests are still served, then the drain', async (t) => {
  const { url, server } = await startServer(t, { shutdown_grace_ms: 1500 })
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
