/**
 * Debian's promtool on the live exposition and on the shipped Prometheus files:
 * - `promtool check metrics` parses /metrics/prometheus of a running server (after successes and
 *   errors, so every family has samples): no parse error, and no lint finding beyond the two
 *   accepted ones listed below (a new one fails the test);
 * - controls: a broken exposition is rejected, a clean one passes (the harness can fail);
 * - `promtool check config` / `check rules` accept deploy/prometheus/{prometheus,alerts}.yml.
 * Takes ~3 s. Skipped with a message when promtool is absent (Debian package "prometheus").
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { postJson, startServer } from '../helpers/start-server.js'
import { findBinary, kRepoRoot } from './ops-helpers.js'

const promtool = findBinary('promtool')

/**
 * Lint findings accepted on purpose, each with its reason:
 * - "abbreviated units": the contract fixes the seed's name `ml_prediction_latency_ms` (the bot's
 *   dashboards use it); the other time families keep `_ms` so that all read the same way.
 */
const kAccepted: ReadonlyArray<{ re: RegExp, why: string }> = [
  { re: /^ml_[a-z0-9_]+_ms metric names should not contain abbreviated units$/, why: 'contract-fixed _ms names' },
]

function check (args: string[], input?: string): { status: number | null, out: string } {
  const r = spawnSync(promtool!, args, { input, encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

if (promtool === null) {
  t.pass('skipped: promtool absent', { skip: 'promtool not found: apt-get install prometheus (.ci/run does)' })
} else {
  t.test('promtool check metrics accepts the live exposition', async (t) => {
    const { url } = await startServer(t)
    for (let i = 0; i < 5; i++) t.equal((await postJson(`${url}/predict`, { price: 600 + i, volume: 10, symbol: 'BTCUSDT' })).status, 200)
    t.equal((await postJson(`${url}/predict`, { price: 'x' })).status, 422)
    t.equal((await postJson(`${url}/predict`, '{not json', true)).status, 400)
    const res = await fetch(`${url}/metrics/prometheus`)
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/, 'text exposition content type')
    const text = await res.text()

    const { status, out } = check(['check', 'metrics'], text)
    t.not(status, 1, `no parse error (promtool exit ${status})`)
    t.ok(status === 0 || status === 3, 'exit 0 (clean) or 3 (lint findings only)')
    const findings = [...new Set(out.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('error while linting')))]
    const unexpected = findings.filter((f) => !kAccepted.some((a) => a.re.test(f)))
    t.same(unexpected, [], 'no lint finding beyond the accepted ones')
    for (const a of kAccepted) {
      const n = findings.filter((f) => a.re.test(f)).length
      if (n > 0) t.comment(`accepted lint (${a.why}): ${n} line(s) like "${findings.find((f) => a.re.test(f))}"`)
    }
  })

  t.test('controls: promtool rejects a broken exposition and passes a clean one', async (t) => {
    t.equal(check(['check', 'metrics'], '# TYPE ml_x_total counter\nml_x_total{code="a} 1\n').status, 1, 'unterminated label value is a parse error')
    t.equal(check(['check', 'metrics'], '# HELP ml_x_total Things.\n# TYPE ml_x_total counter\nml_x_total 1\n').status, 0, 'a clean counter passes')
    t.equal(check(['check', 'metrics'], '# HELP ml_x Things.\n# TYPE ml_x counter\nml_x 1\n').status, 3, 'a counter without _total is a lint finding')
  })

  t.test('promtool accepts the shipped Prometheus config and alert rules', async (t) => {
    const config = check(['check', 'config', join(kRepoRoot, 'deploy/prometheus/prometheus.yml')])
    t.equal(config.status, 0, config.out.trim())
    const rules = check(['check', 'rules', join(kRepoRoot, 'deploy/prometheus/alerts.yml')])
    t.equal(rules.status, 0, rules.out.trim())
  })
}
