import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

t.test('the contract examples answer as it says', async (t) => {
  const { url } = await startServer(t)

  const health = await getJson(`${url}/health`)
  t.equal(health.status, 200)
  t.match(health.body, { status: 'ok', model_loaded: true, model_version: 'xgboost_phase1_v2_calibrated', uptime_seconds: Number })
  t.type(health.body.avg_latency_ms, 'number', 'avg_latency_ms is a number before any prediction (the bot reads f64)')

  const p = await postJson(`${url}/predict`, { price: 612.5, volume: 10, bid_volume: 5, ask_volume: 3 })
  t.equal(p.status, 200)
  t.match(p.body, { direction: /^(LONG|SHORT)$/, confidence: Number, probability_long: Number, model_version: 'xgboost_phase1_v2_calibrated', symbol: 'WBNBUSDT', latency_ms: Number })
  t.equal(Object.keys(p.body).join(','), 'direction,confidence,probability_long,model_version,symbol,latency_ms', 'field order as the old service')
  t.ok(p.body.confidence >= 0.5 && p.body.confidence <= 1, 'confidence in [0.5, 1]')
  t.equal(p.body.confidence, Math.max(p.body.probability_long, Math.round((1 - p.body.probability_long) * 1e6) / 1e6))
  t.equal(p.body.direction, p.body.probability_long >= 0.5 ? 'LONG' : 'SHORT')
  t.ok(p.body.latency_ms > 0 && p.body.latency_ms < 1000)

  const metrics = await getJson(`${url}/metrics`)
  t.equal(metrics.status, 200)
  for (const q of ['p50', 'p95', 'p99']) t.type(metrics.body.latency_ms[q], 'number', `latency_ms.${q}`)
  t.equal(metrics.body.predictions_total, 1)

  const prom = await fetch(`${url}/metrics/prometheus`)
  t.equal(prom.status, 200)
  const text = await prom.text()
  for (const series of ['ml_prediction_latency_ms_bucket', 'ml_prediction_count_total', 'ml_confidence_distribution_bucket', 'ml_service_uptime_seconds']) {
    t.match(text, series, `prometheus exposes ${series}`)
  }

  t.equal((await getJson(`${url}/health/live`)).status, 200)
  t.match(await getJson(`${url}/health/ready`), { status: 200, body: { status: 'ready' } })
})
