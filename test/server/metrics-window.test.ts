/**
 * /metrics over real HTTP on the real server: the top-level distributions cover the recent window
 * (metrics_window_s), `lifetime` covers the time since start, no percentile exceeds its max, the
 * event-loop delay of an idle server is not the 10 ms sampling period, and only request error
 * codes have series. The window's movement itself is tested with an injected clock in
 * test/metrics/service-metrics.test.ts (here it would take a whole window of waiting).
 */
import t from 'tap'
import { configFromSettings } from '../../src/config/load.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

type Summary = Record<string, number | null>

function percentilesAboveMax (name: string, s: Summary): string[] {
  const out: string[] = []
  for (const k of ['p50', 'p90', 'p95', 'p99', 'p999']) {
    if (s[k] !== undefined && s[k] !== null && s[k]! > s.max!) out.push(`${name}.${k} ${s[k]} > max ${s.max}`)
  }
  return out
}

t.test('GET /metrics: window and lifetime views of a live server', async (t) => {
  const { url } = await startServer(t, { metrics_window_s: 10 })
  for (let i = 0; i < 20; i++) {
    t.equal((await postJson(`${url}/predict`, { price: 600 + i, volume: 10, symbol: 'BTCUSDT' })).status, 200)
  }
  const batch = await postJson(`${url}/predict/batch`, { requests: [{ price: 1, volume: 1 }, { price: 2, volume: 1 }, { price: 'x' }] })
  t.equal(batch.status, 200)
  t.equal((await postJson(`${url}/predict`, '{not json', true)).status, 400)
  await new Promise((resolve) => setTimeout(resolve, 300)) // idle: let the event-loop sampler run

  const { status, body } = await getJson(`${url}/metrics`)
  t.equal(status, 200)
  t.equal(body.latency_ms.count, 21, 'window: 20 single requests and 1 batch request')
  t.equal(body.lifetime.latency_ms.count, 21, 'lifetime: the same so far')
  t.equal(body.batch_size.count, body.lifetime.batch_size.count)
  t.ok(body.batch_size.count >= 1 && body.inference_ms.count === body.batch_size.count, 'one inference sample per batch')
  t.equal(body.queue_wait_ms.count, 22, 'one queue wait per admitted row')
  t.ok(body.window_seconds > 0 && body.window_seconds <= 10 + 10 / 6, `window_seconds ${body.window_seconds} within the 10 s window plus a step`)
  t.ok(body.window_seconds <= body.uptime_seconds + 0.001, 'never more than the uptime')
  for (const key of ['p50', 'p90', 'p95', 'p99', 'p999', 'max', 'mean']) t.type(body.latency_ms[key], 'number', `latency_ms.${key}`)

  const problems: string[] = []
  for (const [scope, view] of [['window', body], ['lifetime', body.lifetime]] as const) {
    for (const key of ['latency_ms', 'inference_ms', 'queue_wait_ms', 'batch_size', 'event_loop_delay_ms']) {
      t.ok(view[key] !== undefined, `${scope} has ${key}`)
      problems.push(...percentilesAboveMax(`${scope}.${key}`, view[key]))
    }
  }
  t.same(problems, [], 'no percentile above its max')

  const eld = body.event_loop_delay_ms
  t.ok(eld.count >= 10, `event loop sampled (${eld.count})`)
  t.ok(eld.p50 < 5, `idle server: event-loop delay p50 ${eld.p50} ms, well under the 10 ms sampling period`)
  t.same(body.errors_by_code, { ERR_VALIDATION: 1, ERR_INVALID_JSON: 1 })

  const text = await (await fetch(`${url}/metrics/prometheus`)).text()
  t.match(text, /# HELP ml_prediction_latency_quantile_ms .* over the last 10 s; _sum and _count since start/)
  t.match(text, /\nml_prediction_latency_quantile_ms_count 21\n/)
  t.match(text, /\nml_prediction_latency_ms_count 21\n/)
  const q50 = /\nml_process_event_loop_delay_ms\{quantile="0\.5"\} (\S+)\n/.exec(text)
  t.ok(q50 !== null && Number(q50[1]) < 5, `Prometheus event-loop delay median ${q50?.[1]} ms`)
  for (const code of ['ERR_CONFIG_INVALID', 'ERR_MODEL_LOAD', 'ERR_MODEL_INCOMPATIBLE', 'ERR_UNAUTHORIZED']) {
    t.notMatch(text, `code="${code}"`, `no series for ${code}`)
  }
  t.match(text, 'ml_prediction_errors_total{code="ERR_DEADLINE_EXCEEDED"} 0', 'request codes are pre-created')
})

t.test('metrics_window_s is validated at start', async (t) => {
  for (const bad of [5, 3601, 12.5]) {
    t.throws(() => configFromSettings({ metrics_window_s: bad }), { code: 'ERR_CONFIG_INVALID', message: /metrics_window_s/ }, `${bad}`)
  }
})
