/**
 * Symbols dropped from the feature store (max_symbols, least recently used first) are counted and
 * exported: `symbols_evicted` in /metrics and `ml_feature_symbols_evicted_total` in the Prometheus
 * text, over real HTTP on the real server. A bot that trades more symbols than max_symbols loses
 * their history silently otherwise: this counter is what an alert can watch.
 */
import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('evictions beyond max_symbols are counted in /metrics and /metrics/prometheus', async (t) => {
  const { url } = await startServer(t, { max_symbols: 2 })
  const evicted = async (): Promise<{ json: number, prom: string | undefined }> => {
    const json = (await getJson(`${url}/metrics`)).body.symbols_evicted as number
    const text = await (await fetch(`${url}/metrics/prometheus`, { signal: AbortSignal.timeout(10_000) })).text()
    return { json, prom: /\nml_feature_symbols_evicted_total (\S+)\n/.exec(text)?.[1] }
  }
  t.same(await evicted(), { json: 0, prom: '0' }, 'none at start')

  for (const symbol of ['AAAUSDT', 'BBBUSDT', 'AAAUSDT']) {
    t.equal((await postJson(`${url}/predict`, { price: 100, volume: 1, symbol })).status, 200)
  }
  t.same(await evicted(), { json: 0, prom: '0' }, 'two symbols fit (one of them seen twice)')

  t.equal((await postJson(`${url}/predict`, { price: 100, volume: 1, symbol: 'CCCUSDT' })).status, 200)
  t.same(await evicted(), { json: 1, prom: '1' }, 'a third symbol evicts the least recently used')
  t.equal((await postJson(`${url}/predict`, { price: 100, volume: 1, symbol: 'BBBUSDT' })).status, 200)
  t.same(await evicted(), { json: 2, prom: '2' }, 'the evicted symbol coming back evicts another')

  const text = await (await fetch(`${url}/metrics/prometheus`, { signal: AbortSignal.timeout(10_000) })).text()
  t.match(text, /# TYPE ml_feature_symbols_evicted_total counter\n/)
  t.equal((await getJson(`${url}/metrics`)).body.symbols, 2, 'still at most max_symbols')
})
