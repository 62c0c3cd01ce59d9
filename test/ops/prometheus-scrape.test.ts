/**
 * A real Prometheus (Debian's `prometheus` binary) scrapes the running service on loopback, using
 * the shipped deploy/prometheus/prometheus.yml with only the target and intervals changed (1 s),
 * and the shipped alert rules loaded. Proves:
 * - the query API returns the seed's series (ml_prediction_latency_ms_bucket,
 *   ml_prediction_count_total, ml_confidence_distribution_bucket, ml_service_uptime_seconds), and
 *   the scraped prediction count equals what the test sent;
 * - every expression of the Grafana dashboard (deploy/grafana/dashboards/ml-service.json) is valid
 *   PromQL and returns data for a server under (bounded) load;
 * - every shipped alert rule loads and evaluates without error.
 * Takes ~10-15 s. Skipped with a message when the prometheus binary is absent.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { postJson, startServer } from '../helpers/start-server.js'
import { findBinary, freePort, kRepoRoot, startDaemon, waitFor } from './ops-helpers.js'

const prometheus = findBinary('prometheus')

interface QueryResult { status: string, error?: string, data?: { resultType: string, result: Array<{ metric: Record<string, string>, value?: [number, string] }> } }

async function query (base: string, expr: string): Promise<QueryResult> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) })
  return await res.json() as QueryResult
}

/** Grafana's variables, as a dashboard would expand them for a short window. */
function expand (expr: string): string {
  return expr.replaceAll('$__rate_interval', '10s').replaceAll('$__range', '1m').replaceAll('$instance', '.*')
}

if (prometheus === null) {
  t.pass('skipped: prometheus absent', { skip: 'prometheus binary not found: apt-get install prometheus (.ci/run does)' })
} else {
  t.test('Prometheus scrapes the service; the seed series, the dashboard and the alerts work', async (t) => {
    const started = Date.now()
    const { url, port } = await startServer(t)
    let sent = 0
    for (let i = 0; i < 10; i++) {
      t.equal((await postJson(`${url}/predict`, { price: 600 + i, volume: 10, symbol: 'BTCUSDT' })).status, 200)
      sent++
    }
    // Timestamped bars of one symbol, so realized outcomes and drift (docs/monitoring.md) have figures.
    const bar0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000
    for (let b = 0; b < 4; b++) {
      t.equal((await postJson(`${url}/predict`, { price: 600 + (b % 2), volume: 10, symbol: 'BARS', timestamp_ms: bar0 + b * 60_000 })).status, 200)
      sent++
    }

    // The shipped scrape config, pointed at this server and sped up.
    const dir = mkdtempSync(join(tmpdir(), 'ml-prometheus-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const shipped = parse(readFileSync(join(kRepoRoot, 'deploy/prometheus/prometheus.yml'), 'utf8'))
    shipped.global.scrape_interval = '1s'
    shipped.global.scrape_timeout = '1s'
    shipped.global.evaluation_interval = '1s'
    const job = shipped.scrape_configs.find((j: any) => j.job_name === 'ml-service')
    t.ok(job, 'shipped config has the ml-service job')
    job.static_configs = [{ targets: [`127.0.0.1:${port}`] }]
    copyFileSync(join(kRepoRoot, 'deploy/prometheus/alerts.yml'), join(dir, 'alerts.yml'))
    writeFileSync(join(dir, 'prometheus.yml'), stringify(shipped))

    const promPort = await freePort()
    const daemon = startDaemon(t, prometheus!, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ])
    const prom = `http://127.0.0.1:${promPort}`

    // Bounded background traffic, with a client error now and then, so rates are non-zero.
    let loadDone = false
    const loadUntil = Date.now() + 45_000
    const load = (async () => {
      let i = 0
      while (!loadDone && Date.now() < loadUntil) {
        const r = await postJson(`${url}/predict`, i % 10 === 9 ? { price: -1 } : { price: 600 + (i % 7), volume: 10 + i, symbol: i % 2 === 0 ? 'BTCUSDT' : 'ETHUSDT' })
        if (r.status === 200) sent++
        i++
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    t.teardown(async () => { loadDone = true; await load })

    // Prometheus applies discovered targets on a 5 s tick, so the first sample takes 6-15 s even
    // here: the bound leaves room for a slow start on a loaded machine.
    await waitFor('Prometheus returns ml_prediction_count_total', 60_000, async () => {
      const r = await query(prom, 'ml_prediction_count_total')
      return r.status === 'success' && (r.data?.result.length ?? 0) > 0 ? true : null
    }, () => daemon.exitReason())
    t.comment(`first sample after ${Date.now() - started} ms`)

    for (const series of ['ml_prediction_latency_ms_bucket', 'ml_prediction_count_total', 'ml_confidence_distribution_bucket', 'ml_service_uptime_seconds']) {
      const r = await query(prom, series)
      t.equal(r.status, 'success', `${series}: query succeeds`)
      t.ok((r.data?.result.length ?? 0) > 0, `${series}: ${r.data?.result.length} series scraped`)
      t.ok(r.data?.result.every((s) => s.metric.job === 'ml-service' && s.metric.instance === `127.0.0.1:${port}`), `${series}: labelled job=ml-service, instance=127.0.0.1:${port}`)
    }
    const buckets = await query(prom, 'ml_prediction_latency_ms_bucket')
    t.ok(buckets.data?.result.some((s) => s.metric.le === '+Inf'), 'latency histogram has its +Inf bucket')
    const up = await query(prom, 'up{job="ml-service"}')
    t.equal(up.data?.result[0]?.value?.[1], '1', 'target is up')

    // Enough scrapes for rate() over the dashboard's window.
    await waitFor('three scrapes in the window', 30_000, async () => {
      const r = await query(prom, 'count_over_time(ml_service_uptime_seconds[10s])')
      return Number(r.data?.result[0]?.value?.[1] ?? 0) >= 3 ? true : null
    }, () => daemon.exitReason())

    loadDone = true
    await load
    // After the load stops, the next scrape must see every prediction sent.
    await waitFor('scraped count equals predictions sent', 30_000, async () => {
      const r = await query(prom, 'ml_prediction_count_total')
      return Number(r.data?.result[0]?.value?.[1]) === sent ? true : null
    }, () => daemon.exitReason())
    t.pass(`ml_prediction_count_total = ${sent}, the predictions the test made`)

    const dashboard = JSON.parse(readFileSync(join(kRepoRoot, 'deploy/grafana/dashboards/ml-service.json'), 'utf8'))
    const exprs: Array<{ panel: string, expr: string }> = []
    for (const panel of dashboard.panels) for (const target of panel.targets ?? []) exprs.push({ panel: panel.title, expr: target.expr })
    t.ok(exprs.length >= 15, `${exprs.length} dashboard queries`)
    for (const { panel, expr } of exprs) {
      const r = await query(prom, expand(expr))
      t.equal(r.status, 'success', `${panel}: ${expr} is valid PromQL${r.error === undefined ? '' : ` (${r.error})`}`)
      t.ok((r.data?.result.length ?? 0) > 0, `${panel}: returns data (${expr})`)
    }

    await waitFor('every alert rule evaluated', 30_000, async () => {
      const res = await fetch(`${prom}/api/v1/rules`, { signal: AbortSignal.timeout(5000) })
      const body = await res.json() as { data: { groups: Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }> } }
      const rules = body.data.groups.flatMap((g) => g.rules)
      return rules.length > 0 && rules.every((r) => r.health !== 'unknown') ? rules : null
    }, () => daemon.exitReason()).then((rules) => {
      t.equal(rules.length, 7, 'seven shipped alert rules loaded')
      for (const rule of rules) t.equal(rule.health, 'ok', `alert ${rule.name} evaluates${rule.lastError ? `: ${rule.lastError}` : ''}`)
    })
    const firing = await query(prom, 'ALERTS{alertstate="firing"}')
    t.same(firing.data?.result.map((s) => s.metric.alertname), [], 'no alert fires for a healthy service')
    t.comment(`Prometheus scrape test took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  })
}
