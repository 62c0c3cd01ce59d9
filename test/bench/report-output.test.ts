import t from 'tap'
import { renderChart } from '../../bench/lib/chart-svg.js'
import { compareRuns, renderComparison } from '../../bench/lib/compare.js'
import { createHistogram, encodeHistogram } from '../../bench/lib/histogram.js'
import { mergeThreadResults } from '../../bench/lib/load-generator.js'
import type { LoadResult, LoadSpec } from '../../bench/lib/load-types.js'
import { kResultSchema, type BenchRun, type StepResult } from '../../bench/lib/results.js'
import { breakdown, bucketQuantile, parsePrometheus } from '../../bench/lib/server-metrics.js'
import { renderReport } from '../../bench/lib/table.js'
import { parseCli } from '../../bench/run.js'
import { testSpec } from './load-spec.js'

/** A load whose every answer took `us` µs, `ok` of them, over a 1 s window. */
function fakeLoad (spec: LoadSpec, ok: number, us: number, kept = true): LoadResult {
  const h = createHistogram()
  h.recordValueWithCount(us, ok)
  const sent = kept ? ok : Math.round(ok * 0.6)
  return mergeThreadResults(spec, 'http://127.0.0.1:1/predict', '2026-01-01T00:00:00.000Z', [{
    counts: { sent: ok, ok, non2xx: {}, errors: {}, timeouts: 0, unsent: 0, intended: spec.mode === 'open' ? ok : 0, sentInWindow: sent, connectErrors: 0, reconnects: 0 },
    latency: encodeHistogram(h), sendLag: spec.mode === 'open' ? encodeHistogram(createHistogram()) : null, windowMs: 1000, answerSpanMs: 1000, elu: 0.2, queuedForConnection: 0, requestsTotal: ok,
  }], { cpuUs: 100_000, wallMs: 1000 })
}

function step (id: string, load: LoadResult, sweep: string | null = null): StepResult {
  return { id: `${id}@default`, step: id, label: id, server: 'default', sweep, kind: 'load', load, wrk: null, serverSide: null, serverCpuPercent: 50, serverRssKb: null }
}

function fakeRun (scale: number): BenchRun {
  const closed = step('http-predict-c64', fakeLoad(testSpec({ connections: 64 }), 5000 * scale, 4000))
  const sweep = [0.5, 1, 1.2].map((f, i) => step(`sweep-${f}`, fakeLoad(testSpec({ mode: 'open', rate: 5000 * f, connections: 64 }), 5000 * f, [300, 3000, 50_000][i]!, f < 1.2), 'sweep'))
  const slow = step('slow', fakeLoad(testSpec({}), 10, 12_000))
  return {
    schema: kResultSchema, set: 'default', description: 'test', command: ['npm run bench --'], startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:02:00.000Z', durationS: 120,
    machine: { os: 'Linux', arch: 'x64', cpuModel: 'Test CPU', logicalCores: 2, memoryGb: 4, node: 'v20', v8: '11', packages: {}, git: { commit: 'abc', dirty: false, branch: 'main' }, tasksetAvailable: false },
    loadBefore: { at: '', loadAverage: [0.1, 0.2, 0.3], uptime: null }, loadAfter: { at: '', loadAverage: [1, 1, 1], uptime: null },
    pinning: 'not pinned', options: {}, servers: [], steps: [closed, ...sweep, slow], floor: null, crossCheck: null, notes: [],
  }
}

t.test('the table marks the old service target (p95 under 10 ms)', async (t) => {
  const text = renderReport(fakeRun(1))
  const rowOf = (name: string): string => text.split('\n').find((l) => l.startsWith(name))!
  t.match(rowOf('http-predict-c64'), /\byes\b/, 'p95 4 ms: yes')
  t.match(rowOf('slow'), /\bNO\b/, 'p95 12 ms: NO')
  t.match(rowOf('sweep-1.2'), /!/, 'a rate not kept is flagged in the row')
})

t.test('the chart is an SVG with one line per percentile, the target and the knee', async (t) => {
  const svg = renderChart(fakeRun(1))!
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(svg, /<\/svg>\n$/)
  for (const color of ['#1f5fa8', '#2a9d8f', '#e07b00', '#c62828']) t.match(svg, new RegExp(`<path d="M[^"]+" fill="none" stroke="${color}"`), `series ${color}`)
  t.match(svg, /old service target: p95 under 10 ms/)
  t.match(svg, /closed-loop max \(c64\): 5,000\/s/)
  t.match(svg, /not kept \(hollow\)/)
  t.match(svg, /log scale/)
  t.equal(renderChart({ ...fakeRun(1), steps: [] }), null, 'no sweep, no chart')
})

t.test('--compare gives now/before ratios by step id', async (t) => {
  const before = fakeRun(1)
  const now = { ...fakeRun(2), steps: [...fakeRun(2).steps.slice(0, 4), step('new-step', fakeLoad(testSpec({}), 1, 1))] }
  const { rows, onlyNow, onlyBefore } = compareRuns(now, before)
  const c64 = rows.find((r) => r.id === 'http-predict-c64@default')!
  t.equal(c64.throughput, 2, 'twice the throughput')
  t.equal(c64.p50, 1, 'same p50')
  t.same(onlyNow, ['new-step@default'])
  t.same(onlyBefore, ['slow@default'])
  t.match(renderComparison(now, before, 'before.json'), /http-predict-c64@default\s+5,000 -> 10,000\s+x2\.00/)
})

t.test('the server view is the difference of two scrapes', async (t) => {
  const scrape = (n: number, sum: number, b: number[]): string => [
    '# TYPE ml_prediction_latency_ms histogram',
    ...[0.1, 0.5, 1].map((le, i) => `ml_prediction_latency_ms_bucket{le="${le}"} ${b[i]}`),
    `ml_prediction_latency_ms_bucket{le="+Inf"} ${n}`, `ml_prediction_latency_ms_sum ${sum}`, `ml_prediction_latency_ms_count ${n}`,
    `ml_prediction_errors_total{code="ERR_OVERLOADED"} ${n > 10 ? 7 : 2}`,
  ].join('\n')
  const d = breakdown(parsePrometheus(scrape(10, 5, [2, 8, 10])), parsePrometheus(scrape(110, 35, [2, 108, 110])))
  t.equal(d.serverMs!.count, 100)
  t.equal(d.serverMs!.mean, 0.3, 'exact mean from _sum/_count')
  t.equal(d.serverMs!.p50, 0.3, 'interpolated: rank 50 of the 100 in (0.1, 0.5]')
  t.same(d.counters, { 'ml_prediction_errors_total{code="ERR_OVERLOADED"}': 5 })
  t.equal(d.queueWaitMs, null, 'a family the server does not expose is null')
  t.equal(bucketQuantile([[1, 0], [Infinity, 4]], 0.5), 1, 'the +Inf bucket answers its lower bound')
})

t.test('command-line mistakes name the option', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--set', 'nope'], /--set must be one of default, /],
    [['--scale', '0'], /--scale/],
    [['--threads', '1.5'], /--threads/],
    [['--build', 'x'], /--build/],
    [['--url', 'ftp://x'], /--url must be an http/],
    [['--bogus'], /Unknown option '--bogus'/],
  ]
  for (const [argv, match] of cases) {
    const r = parseCli(argv, '/repo')
    t.ok(r instanceof Error, argv.join(' '))
    t.match((r as Error).message, match)
  }
  t.equal(parseCli(['--help'], '/repo'), 'help')
  const ok = parseCli(['--set', 'batching', '--scale', '0.5'], '/repo')
  t.match(ok, { set: 'batching', scale: 0.5, threads: 1, build: 'dist', wrk: true, floor: true, out: '/repo/bench/results' })
})
