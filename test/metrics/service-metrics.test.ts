import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { kErrorTable, kRequestErrorCodes } from '../../src/errors.js'
import { LatencyHistogram } from '../../src/metrics/latency-histogram.js'
import { BucketCounts, escapeLabelValue, formatNumber } from '../../src/metrics/prometheus-writer.js'
import {
  ServiceMetrics,
  kBatchSizeBuckets,
  kConfidenceBuckets,
  kLatencyBucketsMs,
  kPrometheusContentType,
} from '../../src/metrics/service-metrics.js'

// ---- helpers ---------------------------------------------------------------------------------

interface Exposition {
  /** `name{labels}` exactly as written -> value */
  readonly samples: Map<string, number>
  readonly types: Map<string, string>
  readonly helps: Map<string, string>
}

const kSampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/

/**
 * A strict-enough reader of text format 0.0.4: every line is HELP, TYPE or a sample; TYPE comes
 * once per family and before its samples; a sample belongs to the last declared family (with the
 * histogram suffixes); no series repeats. Throws on any violation, so tests fail loudly.
 */
function parseExposition (text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  const helps = new Map<string, string>()
  let family: string | null = null
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name, ...rest] = line.slice(7).split(' ')
      if (helps.has(name!)) throw new Error(`HELP twice for ${name}`)
      helps.set(name!, rest.join(' '))
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ')
      if (types.has(name!)) throw new Error(`TYPE twice for ${name}`)
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!)) throw new Error(`bad type ${line}`)
      types.set(name!, type!)
      family = name!
      continue
    }
    const m = kSampleLine.exec(line)
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`)
    const name = m[1]!
    const familyType = types.get(family ?? '')
    const allowed = familyType === 'histogram'
      ? [`${family}_bucket`, `${family}_sum`, `${family}_count`]
      : familyType === 'summary' ? [family, `${family}_sum`, `${family}_count`] : [family]
    if (!allowed.includes(name)) throw new Error(`sample ${name} outside its family (${family})`)
    const key = name + (m[2] ?? '')
    if (samples.has(key)) throw new Error(`duplicate series ${key}`)
    const raw = m[3]!
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw)
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value in ${line}`)
    samples.set(key, value)
  }
  return { samples, types, helps }
}

function sample (e: Exposition, key: string): number {
  const v = e.samples.get(key)
  if (v === undefined) throw new Error(`missing series ${key}`)
  return v
}

/** Every number anywhere in the value is finite (JSON would turn NaN/Infinity into null silently). */
function allFinite (value: unknown, path = '$'): string[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [path]
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => allFinite(v, `${path}.${k}`))
  }
  return []
}

/** Deterministic PRNG so a failure reproduces. */
function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The histogram family as prom-client renders it, for comparison of sample lines. */
async function promClientHistogram (name: string, buckets: readonly number[], values: readonly number[]): Promise<Exposition> {
  const registry = new Registry()
  const h = new Histogram({ name, help: 'oracle', buckets: [...buckets], registers: [registry] })
  for (const v of values) h.observe(v)
  return parseExposition(await registry.metrics())
}

// ---- tests -----------------------------------------------------------------------------------

t.test('nothing recorded: counts are 0, statistics are null, no NaN anywhere in JSON', async (t) => {
  const m = new ServiceMetrics()
  const json = m.toJSON()
  t.same(allFinite(json), [], 'no NaN or Infinity')
  t.same(JSON.parse(JSON.stringify(json)), json, 'JSON round trip is lossless')
  for (const key of ['latency_ms', 'inference_ms', 'queue_wait_ms'] as const) {
    t.same(json[key], { p50: null, p90: null, p95: null, p99: null, p999: null, max: null, mean: null, count: 0 }, key)
  }
  t.same(json.batch_size, { p50: null, p95: null, p99: null, max: null, mean: null, count: 0 })
  t.equal(json.predictions_total, 0)
  t.same(json.predictions_by_direction, { LONG: 0, SHORT: 0 })
  t.equal(json.errors_total, 0)
  t.same(json.errors_by_code, {})
  t.equal(json.confidence.mean, null)
  t.same(Object.values(json.confidence.buckets), kConfidenceBuckets.map(() => 0))
  t.same([json.queue_depth, json.workers, json.model_version, json.symbols, json.symbols_evicted], [null, null, null, null, null],
    'gauges without a callback are null')
  t.equal(m.meanLatencyMs(), null)

  const e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_prediction_latency_ms_count'), 0)
  t.equal(sample(e, 'ml_prediction_latency_ms_sum'), 0)
  t.equal(sample(e, 'ml_prediction_latency_ms_bucket{le="+Inf"}'), 0)
  t.equal(sample(e, 'ml_prediction_count_total'), 0)
  t.ok(Number.isNaN(sample(e, 'ml_prediction_latency_quantile_ms{quantile="0.99"}')), 'empty quantile is NaN')
  t.notOk(e.types.has('ml_queue_depth'), 'no gauge series without its callback')
  t.notOk(e.types.has('ml_model_info'))
  t.notOk(e.types.has('ml_process_cpu_seconds_total'), 'process metrics are off by default')
})

t.test('1..1000 µs: percentiles, max, mean and count', async (t) => {
  const m = new ServiceMetrics()
  for (let us = 1; us <= 1000; us++) m.recordRequest(us)
  const l = m.toJSON().latency_ms
  // Values below 2048 are exact at 3 significant digits, so these are exact.
  t.same(l, { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99, p999: 0.999, max: 1, mean: 0.501, count: 1000 })
  t.equal(m.meanLatencyMs(), 0.501, 'mean 500.5 µs rounds to 501 µs')
})

t.test('percentiles agree with an exact oracle within 3 significant digits', async (t) => {
  const random = mulberry32(42)
  const h = new LatencyHistogram()
  const values: number[] = []
  for (let i = 0; i < 20_000; i++) {
    const us = Math.floor(Math.exp(random() * Math.log(5_000_000))) // log-uniform 1 µs .. 5 s
    values.push(us)
    h.record(us)
  }
  values.sort((a, b) => a - b)
  for (const p of [0, 10, 50, 90, 95, 99, 99.9, 99.99, 100]) {
    const exact = values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)]!
    const got = h.percentile(p)!
    t.ok(Math.abs(got - exact) <= exact * 1e-3 + 1, `p${p}: hdr ${got} vs exact ${exact}`)
  }
  t.equal(h.count, values.length)
  t.equal(h.total, values.reduce((a, b) => a + b, 0), 'sum is exact')
  t.equal(h.max(), values.at(-1)!, 'max within precision (exact here)')
})

t.test('recorded values are clamped and truncated; NaN never corrupts the count', async (t) => {
  const h = new LatencyHistogram({ highest: 1000 })
  t.equal(h.record(12.9), 12, 'fraction dropped')
  t.equal(h.record(-5), 0)
  t.equal(h.record(NaN), 0)
  t.equal(h.record(5000), 1000, 'clamped to highest')
  t.equal(h.count, 4)
  t.equal(h.total, 1012)
  t.throws(() => new LatencyHistogram({ highest: 1 }), RangeError)

  const m = new ServiceMetrics({ highestUs: 2_000_000 })
  m.recordRequest(5_000_000) // 5 s: beyond every finite bucket
  m.recordRequest(NaN)
  const e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_prediction_latency_ms_bucket{le="1000"}'), 1, 'the NaN counted as 0 µs')
  t.equal(sample(e, 'ml_prediction_latency_ms_bucket{le="+Inf"}'), 2)
  t.equal(sample(e, 'ml_prediction_latency_ms_sum'), 2000, 'clamped 2 s')
  t.same(allFinite(m.toJSON()), [])
})

t.test('Prometheus latency histogram: buckets, sum and count match what was recorded', async (t) => {
  const m = new ServiceMetrics()
  for (let us = 1; us <= 1000; us++) m.recordRequest(us)
  m.recordRequest(3000)
  m.recordRequest(2_000_000)
  const e = parseExposition(m.toPrometheus())
  t.equal(e.types.get('ml_prediction_latency_ms'), 'histogram')
  const expected: Record<string, number> = {
    0.05: 50, 0.1: 100, 0.25: 250, 0.5: 500, 0.75: 750, 1: 1000, 2.5: 1000, 5: 1001,
    10: 1001, 25: 1001, 50: 1001, 100: 1001, 250: 1001, 1000: 1001,
  }
  for (const le of kLatencyBucketsMs) {
    t.equal(sample(e, `ml_prediction_latency_ms_bucket{le="${le}"}`), expected[String(le)], `le=${le}`)
  }
  t.equal(sample(e, 'ml_prediction_latency_ms_bucket{le="+Inf"}'), 1002)
  t.equal(sample(e, 'ml_prediction_latency_ms_count'), 1002)
  t.equal(sample(e, 'ml_prediction_latency_ms_sum'), (500_500 + 3000 + 2_000_000) / 1000)
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms{quantile="0.5"}'), 0.501)
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms{quantile="1"}'), 2000, 'exact max, not the top of its hdr bucket')
  t.equal(m.toJSON().latency_ms.max, 2000)
})

t.test('histogram text matches prom-client for the same observations (oracle)', async (t) => {
  const random = mulberry32(7)
  const latencyUs: number[] = []
  for (let i = 0; i < 5000; i++) latencyUs.push(Math.floor(Math.exp(random() * Math.log(3_000_000))))
  // Exact bucket edges too: a value equal to a bound belongs to that bucket (le = "less or equal").
  latencyUs.push(50, 100, 250, 500, 750, 1000, 2500, 51, 1001)
  const rows: number[] = []
  for (let i = 0; i < 500; i++) rows.push(1 + Math.floor(random() * 1500))
  rows.push(1, 2, 4, 1024, 1025)

  const m = new ServiceMetrics()
  for (const us of latencyUs) m.recordQueueWait(us)
  for (const r of rows) m.recordBatch(r, 100)
  const mine = parseExposition(m.toPrometheus())

  const cases = [
    { name: 'ml_queue_wait_ms', buckets: kLatencyBucketsMs, values: latencyUs.map((us) => us / 1000) },
    { name: 'ml_batch_size', buckets: kBatchSizeBuckets, values: rows },
  ]
  for (const { name, buckets, values } of cases) {
    const oracle = await promClientHistogram(name, buckets, values)
    t.equal(mine.types.get(name), oracle.types.get(name), `${name} TYPE`)
    let compared = 0
    for (const [key, value] of oracle.samples) {
      if (key === `${name}_sum`) {
        t.ok(Math.abs(sample(mine, key) - value) <= Math.abs(value) * 1e-9, `${key} ${sample(mine, key)} ≈ ${value}`)
      } else {
        t.equal(sample(mine, key), value, key)
      }
      compared++
    }
    t.equal(compared, buckets.length + 3, `${name}: every bucket, +Inf, _sum and _count compared`)
  }
})

t.test('predictions, directions and the confidence distribution', async (t) => {
  const m = new ServiceMetrics()
  // p -> confidence bucket (upper bound): 0.5 is LONG (>= 0.5) with confidence 0.5.
  const cases: Array<[number, 'LONG' | 'SHORT', string | null]> = [
    [0.5, 'LONG', '0.5'],
    [0.72, 'LONG', '0.75'],
    [0.28, 'SHORT', '0.75'],
    [0.61, 'LONG', '0.65'],
    [1, 'LONG', '1.0'],
    [0, 'SHORT', '1.0'],
    [0.97, 'LONG', '1.0'],
    [0.04, 'SHORT', '1.0'],
    [0.8, 'LONG', '0.8'],
    [NaN, 'SHORT', null], // served, but no confidence to count
  ]
  const jsonKeys = ['0.5', '0.55', '0.6', '0.65', '0.7', '0.75', '0.8', '0.85', '0.9', '0.95', '1.0']
  const expectedBuckets: Record<string, number> = Object.fromEntries(jsonKeys.map((k) => [k, 0]))
  let confidenceSum = 0
  let confidenceCount = 0
  for (const [p, , bucket] of cases) {
    m.recordPrediction(p)
    if (bucket !== null) {
      expectedBuckets[bucket]!++
      confidenceSum += Math.max(p, 1 - p)
      confidenceCount++
    }
  }
  const json = m.toJSON()
  t.equal(json.predictions_total, cases.length)
  t.equal(m.predictionsTotal, cases.length)
  t.same(json.predictions_by_direction, {
    LONG: cases.filter((c) => c[1] === 'LONG').length,
    SHORT: cases.filter((c) => c[1] === 'SHORT').length,
  })
  t.same(json.confidence.buckets, expectedBuckets, 'non-cumulative counts per upper bound')
  t.same(Object.keys(json.confidence.buckets), jsonKeys, 'keys in ascending order, "1.0" last')
  t.equal(json.confidence.mean, Math.round((confidenceSum / confidenceCount) * 1e6) / 1e6)
  t.same(allFinite(json), [])

  const e = parseExposition(m.toPrometheus())
  t.equal(e.types.get('ml_prediction_count_total'), 'counter')
  t.equal(sample(e, 'ml_prediction_count_total'), cases.length)
  t.equal(sample(e, 'ml_prediction_direction_total{direction="LONG"}'), 6)
  t.equal(sample(e, 'ml_prediction_direction_total{direction="SHORT"}'), 4)
  t.equal(e.types.get('ml_confidence_distribution'), 'histogram')
  let cumulative = 0
  for (let i = 0; i < kConfidenceBuckets.length; i++) {
    const b = kConfidenceBuckets[i]!
    cumulative += expectedBuckets[jsonKeys[i]!]!
    t.equal(sample(e, `ml_confidence_distribution_bucket{le="${b}"}`), cumulative, `le=${b} cumulative`)
  }
  t.equal(sample(e, 'ml_confidence_distribution_bucket{le="+Inf"}'), confidenceCount)
  t.equal(sample(e, 'ml_confidence_distribution_count'), confidenceCount)
  t.ok(Math.abs(sample(e, 'ml_confidence_distribution_sum') - confidenceSum) < 1e-12)
})

t.test('errors are counted by code; unknown codes count as ERR_INTERNAL', async (t) => {
  const m = new ServiceMetrics()
  for (let i = 0; i < 3; i++) m.recordError('ERR_VALIDATION')
  m.recordError('ERR_OVERLOADED')
  m.recordError('ERR_NO_SUCH_CODE')
  m.recordError('')
  const json = m.toJSON()
  t.equal(json.errors_total, 6)
  t.equal(m.errorsTotal, 6)
  t.same(json.errors_by_code, { ERR_VALIDATION: 3, ERR_OVERLOADED: 1, ERR_INTERNAL: 2 }, 'only non-zero codes')

  const e = parseExposition(m.toPrometheus())
  t.equal(e.types.get('ml_prediction_errors_total'), 'counter')
  const codes: readonly string[] = kRequestErrorCodes
  for (const code of codes) {
    t.equal(sample(e, `ml_prediction_errors_total{code="${code}"}`), json.errors_by_code[code] ?? 0, code)
  }
  const series = [...e.samples.keys()].filter((k) => k.startsWith('ml_prediction_errors_total{'))
  t.equal(series.length, codes.length, 'one pre-created series per request code, none invented')
})

t.test('no error series for codes no request can produce (start-up, model load, admin)', async (t) => {
  const notRequest = Object.keys(kErrorTable).filter((c) => !(kRequestErrorCodes as readonly string[]).includes(c))
  t.same(notRequest.sort(), ['ERR_CONFIG_INVALID', 'ERR_MODEL_INCOMPATIBLE', 'ERR_MODEL_LOAD', 'ERR_STATE_FILE', 'ERR_UNAUTHORIZED'],
    'the codes left out are exactly these (a new code must be placed on one side deliberately)')
  const m = new ServiceMetrics()
  m.recordError('ERR_MODEL_LOAD') // not a request code: counted as ERR_INTERNAL, not as its own series
  const text = m.toPrometheus()
  for (const code of notRequest) t.notMatch(text, `code="${code}"`, `no ${code} series`)
  t.same(m.toJSON().errors_by_code, { ERR_INTERNAL: 1 })
})

t.test('batches, inference time and queue wait', async (t) => {
  const m = new ServiceMetrics()
  m.recordBatch(1, 100)
  m.recordBatch(8, 300)
  m.recordBatch(64, 2000)
  m.recordQueueWait(0)
  m.recordQueueWait(40)
  const json = m.toJSON()
  t.same(json.batch_size, { p50: 8, p95: 64, p99: 64, max: 64, mean: 24.333, count: 3 })
  t.same(json.inference_ms, { p50: 0.3, p90: 2, p95: 2, p99: 2, p999: 2, max: 2, mean: 0.8, count: 3 })
  t.same(json.queue_wait_ms, { p50: 0, p90: 0.04, p95: 0.04, p99: 0.04, p999: 0.04, max: 0.04, mean: 0.02, count: 2 })
  t.same(json.latency_ms.count, 0, 'batches do not count as requests')

  const e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_batch_size_bucket{le="1"}'), 1)
  t.equal(sample(e, 'ml_batch_size_bucket{le="4"}'), 1)
  t.equal(sample(e, 'ml_batch_size_bucket{le="8"}'), 2)
  t.equal(sample(e, 'ml_batch_size_bucket{le="64"}'), 3)
  t.equal(sample(e, 'ml_batch_size_sum'), 73)
  t.equal(sample(e, 'ml_inference_latency_ms_bucket{le="0.1"}'), 1)
  t.equal(sample(e, 'ml_inference_latency_ms_bucket{le="0.5"}'), 2)
  t.equal(sample(e, 'ml_inference_latency_ms_bucket{le="2.5"}'), 3)
  t.equal(sample(e, 'ml_inference_latency_ms_sum'), 2.4)
  t.equal(sample(e, 'ml_queue_wait_ms_bucket{le="0.05"}'), 2)
  t.equal(sample(e, 'ml_queue_wait_ms_count'), 2)
  t.equal(sample(e, 'ml_inference_latency_quantile_ms{quantile="0.5"}'), 0.3)
  t.equal(sample(e, 'ml_queue_wait_quantile_ms{quantile="0.999"}'), 0.04)
})

t.test('gauges come from the callbacks at render time; uptime from the clock', async (t) => {
  let depth = 3
  let version: string | null = 'v1 "quoted" \\ path\nline'
  let clockMs = 1_000
  const m = new ServiceMetrics({
    queueDepth: () => depth,
    workers: () => 4,
    modelVersion: () => version,
    symbols: () => 12,
    now: () => clockMs,
  })
  let evicted = 0
  // Registered after construction, as the server does once the feature store exists.
  m.observe({ symbolsEvicted: () => evicted })
  clockMs += 90_500.25
  let json = m.toJSON()
  t.same([json.queue_depth, json.workers, json.model_version, json.symbols, json.uptime_seconds],
    [3, 4, version, 12, 90.5])
  t.equal(json.symbols_evicted, 0)
  t.equal(m.toJSON().queue_depth, 3, 'observe() keeps the sources it was not given')

  let e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_queue_depth'), 3)
  t.equal(sample(e, 'ml_workers'), 4)
  t.equal(sample(e, 'ml_symbols_tracked'), 12)
  t.equal(sample(e, 'ml_feature_symbols_evicted_total'), 0)
  t.equal(e.types.get('ml_feature_symbols_evicted_total'), 'counter')
  t.equal(sample(e, 'ml_service_uptime_seconds'), 90.5)
  t.equal(e.types.get('ml_service_uptime_seconds'), 'gauge')
  t.equal(sample(e, 'ml_model_loaded'), 1)
  t.equal(sample(e, `ml_model_info{model_version="${escapeLabelValue(version)}"}`), 1, 'label value escaped')
  t.equal(escapeLabelValue(version), 'v1 \\"quoted\\" \\\\ path\\nline')

  depth = 0
  version = null
  evicted = 7
  json = m.toJSON()
  t.equal(json.queue_depth, 0)
  t.equal(json.symbols_evicted, 7)
  t.equal(json.model_version, null)
  e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_queue_depth'), 0)
  t.equal(sample(e, 'ml_model_loaded'), 0)
  t.equal(sample(e, 'ml_feature_symbols_evicted_total'), 7)
  t.notOk([...e.samples.keys()].some((k) => k.startsWith('ml_model_info')), 'no info sample without a model')
})

t.test('the seed series are all present with the right types', async (t) => {
  const m = new ServiceMetrics({ queueDepth: () => 0, workers: () => 1, modelVersion: () => 'x', symbols: () => 0 })
  m.recordRequest(120)
  m.recordPrediction(0.7)
  const e = parseExposition(m.toPrometheus())
  const expected: Record<string, string> = {
    ml_prediction_latency_ms: 'histogram',
    ml_prediction_count_total: 'counter',
    ml_confidence_distribution: 'histogram',
    ml_service_uptime_seconds: 'gauge',
    ml_prediction_errors_total: 'counter',
    ml_inference_latency_ms: 'histogram',
    ml_queue_wait_ms: 'histogram',
    ml_batch_size: 'histogram',
    ml_queue_depth: 'gauge',
    ml_workers: 'gauge',
    ml_model_info: 'gauge',
    ml_symbols_tracked: 'gauge',
    ml_prediction_latency_quantile_ms: 'summary',
  }
  for (const [name, type] of Object.entries(expected)) t.equal(e.types.get(name), type, name)
  for (const name of e.types.keys()) t.ok(e.helps.has(name), `${name} has HELP`)
  t.equal(kPrometheusContentType, Registry.PROMETHEUS_CONTENT_TYPE, 'the same content type as prom-client')
})

t.test('two instances do not share state', async (t) => {
  const a = new ServiceMetrics()
  const b = new ServiceMetrics()
  a.recordRequest(500)
  a.recordPrediction(0.9)
  a.recordError('ERR_VALIDATION')
  a.recordBatch(4, 100)
  a.recordQueueWait(10)
  const jb = b.toJSON()
  t.equal(jb.latency_ms.count, 0)
  t.equal(jb.predictions_total, 0)
  t.equal(jb.errors_total, 0)
  t.equal(jb.batch_size.count, 0)
  t.equal(jb.queue_wait_ms.count, 0)
  t.same(Object.values(jb.confidence.buckets).reduce((x, y) => x + y, 0), 0)
  const eb = parseExposition(b.toPrometheus())
  t.equal(sample(eb, 'ml_prediction_latency_ms_count'), 0)
  t.equal(sample(eb, 'ml_confidence_distribution_count'), 0)
  t.equal(sample(eb, 'ml_prediction_errors_total{code="ERR_VALIDATION"}'), 0)
  t.equal(a.toJSON().latency_ms.count, 1)
})

t.test('process metrics are opt-in and stop on close()', async (t) => {
  const m = new ServiceMetrics({ processMetrics: true })
  t.teardown(() => m.close())
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the 10 ms monitor take samples
  const e = parseExposition(m.toPrometheus())
  t.equal(e.types.get('ml_process_cpu_seconds_total'), 'counter')
  t.ok(sample(e, 'ml_process_cpu_seconds_total') > 0)
  t.ok(sample(e, 'ml_process_resident_memory_bytes') > 0)
  t.ok(sample(e, 'ml_process_heap_used_bytes') > 0)
  t.ok(e.samples.has('ml_process_event_loop_delay_ms{quantile="0.99"}'))
  m.close()
  m.close()
  t.notOk(parseExposition(m.toPrometheus()).types.has('ml_process_cpu_seconds_total'), 'gone after close()')
})

t.test('writer building blocks', async (t) => {
  t.equal(formatNumber(NaN), 'NaN')
  t.equal(formatNumber(Infinity), '+Inf')
  t.equal(formatNumber(-Infinity), '-Inf')
  t.equal(formatNumber(0.05), '0.05')
  const b = new BucketCounts([0.05, 1], 1000)
  t.same([...b.bounds], [50, 1000], 'bounds converted to recorded units exactly')
  b.observe(50)
  b.observe(51)
  b.observe(1001)
  t.same([...b.counts], [1, 1, 1])
  b.reset()
  t.same([b.count, b.sum, [...b.counts]], [0, 0, [0, 0, 0]])
  t.throws(() => new BucketCounts([1, 1]), RangeError)
  t.throws(() => new BucketCounts([]), RangeError)
  t.throws(() => parseExposition('x 1'), 'the test parser itself rejects a missing final line feed')
  t.throws(() => parseExposition('# TYPE a gauge\nb 1\n'), 'and samples outside their family')
})

// ---- recent window and lifetime ----------------------------------------------------------------

t.test('recent window: values from two windows ago leave the window views, stay in lifetime', async (t) => {
  let clockMs = 5_000
  const m = new ServiceMetrics({ now: () => clockMs, windowMs: 60_000 })
  t.teardown(() => m.close())
  // A cold start: one 2 s request, a slow first batch, a long first wait; then ordinary traffic.
  m.recordRequest(2_000_000)
  m.recordBatch(256, 900_000)
  m.recordQueueWait(700_000)
  for (let i = 0; i < 100; i++) m.recordRequest(500)

  let json = m.toJSON()
  t.same(json.latency_ms, json.lifetime.latency_ms, 'at first the window is the lifetime')
  t.equal(json.latency_ms.max, 2000)
  t.equal(json.window_seconds, 0, 'covers nothing yet: the process just started')

  // The window moves in steps of 10 s and keeps six full steps: a value stays 60 to 70 s.
  clockMs += 69_999
  m.rotate()
  json = m.toJSON()
  t.equal(json.latency_ms.count, 101, 'still in the window at 69.999 s')
  t.equal(json.window_seconds, 69.999)
  clockMs += 1
  m.rotate()
  json = m.toJSON()
  t.equal(json.latency_ms.count, 0, 'gone at 70 s')
  t.equal(json.window_seconds, 60, 'a full window of six steps')

  // Two windows later, new traffic.
  clockMs += 50_000
  m.rotate()
  for (let i = 0; i < 10; i++) m.recordRequest(300)
  m.recordBatch(4, 200)
  m.recordQueueWait(40)
  json = m.toJSON()
  t.same(json.latency_ms, { p50: 0.3, p90: 0.3, p95: 0.3, p99: 0.3, p999: 0.3, max: 0.3, mean: 0.3, count: 10 },
    'the window holds only what happened in it')
  t.same(json.batch_size, { p50: 4, p95: 4, p99: 4, max: 4, mean: 4, count: 1 })
  t.same(json.inference_ms.max, 0.2)
  t.same(json.queue_wait_ms.max, 0.04)
  t.equal(json.lifetime.latency_ms.count, 111, 'the lifetime keeps everything')
  t.equal(json.lifetime.latency_ms.max, 2000)
  t.equal(json.lifetime.latency_ms.mean, Math.round((2_000_000 + 100 * 500 + 10 * 300) / 111) / 1000)
  t.equal(json.lifetime.batch_size.count, 2)
  t.equal(json.lifetime.batch_size.max, 256)
  t.equal(json.lifetime.inference_ms.max, 900)
  t.equal(json.lifetime.queue_wait_ms.max, 700)
  t.equal(m.meanLatencyMs(), json.lifetime.latency_ms.mean, '/health\'s mean is the lifetime one')

  const e = parseExposition(m.toPrometheus())
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms{quantile="0.99"}'), 0.3, 'summary quantiles: the window')
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms{quantile="1"}'), 0.3)
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms_count'), 111, 'summary _count: since start')
  t.equal(sample(e, 'ml_prediction_latency_quantile_ms_sum'), (2_000_000 + 100 * 500 + 10 * 300) / 1000)
  t.equal(sample(e, 'ml_prediction_latency_ms_count'), 111, 'histogram: cumulative')
  t.equal(sample(e, 'ml_prediction_latency_ms_bucket{le="1000"}'), 110)
  t.equal(sample(e, 'ml_inference_latency_quantile_ms{quantile="1"}'), 0.2)
  t.match(e.helps.get('ml_prediction_latency_quantile_ms'), /over the last 60 s; _sum and _count since start/)

  // A window with nothing in it: null statistics, NaN quantiles, lifetime intact.
  clockMs += 120_000
  json = m.toJSON()
  t.same(json.latency_ms, { p50: null, p90: null, p95: null, p99: null, p999: null, max: null, mean: null, count: 0 })
  t.equal(json.lifetime.latency_ms.count, 111)
  t.ok(Number.isNaN(sample(parseExposition(m.toPrometheus()), 'ml_prediction_latency_quantile_ms{quantile="0.5"}')))
  t.same(allFinite(json), [])
})

t.test('the window moves on its own timer, not only on reads', async (t) => {
  const m = new ServiceMetrics({ windowMs: 60 }) // steps of 10 ms, real clock
  t.teardown(() => m.close())
  m.recordRequest(1000)
  // Records land in the slot the timer made current: after 150 ms (> 70 ms) with no read, a new
  // value must be in a slot of its own, so the next read keeps it and drops the old one.
  await new Promise((resolve) => setTimeout(resolve, 150))
  m.recordRequest(200)
  const json = m.toJSON()
  t.equal(json.latency_ms.count, 1, 'only the recent value')
  t.equal(json.latency_ms.max, 0.2)
  t.equal(json.lifetime.latency_ms.count, 2)
})

t.test('window length is validated', async (t) => {
  t.throws(() => new ServiceMetrics({ windowMs: 0 }), RangeError)
  t.throws(() => new ServiceMetrics({ windowMs: NaN }), RangeError)
})

t.test('no percentile above max, in the window, the lifetime and the Prometheus summaries', async (t) => {
  // The distribution that exposed it: above 2047 µs hdr answers the top of the value's bucket,
  // so p90..p999 of {1.5, 12.345, 2000} ms read 2000.895 against a max of 2000.
  let clockMs = 0
  const m = new ServiceMetrics({ now: () => clockMs })
  t.teardown(() => m.close())
  for (const us of [1_500, 12_345, 2_000_000]) { m.recordRequest(us); m.recordQueueWait(us); m.recordBatch(1, us) }
  m.recordBatch(3000, 5) // 3000 rows: the batch-size histogram has the same bucket tops (3001 here)
  let json = m.toJSON()
  t.same(json.latency_ms, { p50: 12.351, p90: 2000, p95: 2000, p99: 2000, p999: 2000, max: 2000, mean: 671.282, count: 3 })
  t.equal(json.batch_size.p99, 3000, 'not the bucket top 3001: capped at the max row count')

  // Log-uniform 1 µs .. 5 s in the window, more in an older slot so the lifetime merges the past.
  const random = mulberry32(3)
  const draw = (): number => Math.floor(Math.exp(random() * Math.log(5_000_000)))
  for (let i = 0; i < 5000; i++) { const us = draw(); m.recordRequest(us); m.recordQueueWait(us); m.recordBatch(1 + (us % 5000), us) }
  clockMs += 200_000
  m.rotate()
  for (let i = 0; i < 5000; i++) { const us = draw(); m.recordRequest(us); m.recordQueueWait(us); m.recordBatch(1 + (us % 5000), us) }
  json = m.toJSON()
  const views: Array<[string, Record<string, number | null>]> = []
  for (const scope of [json, json.lifetime] as const) {
    const label = scope === json ? 'window' : 'lifetime'
    views.push([`${label} latency_ms`, { ...scope.latency_ms }], [`${label} queue_wait_ms`, { ...scope.queue_wait_ms }],
      [`${label} inference_ms`, { ...scope.inference_ms }], [`${label} batch_size`, { ...scope.batch_size }])
  }
  let checked = 0
  for (const [name, v] of views) {
    const ps = ['p50', 'p90', 'p95', 'p99', 'p999'].filter((k) => k in v).map((k) => v[k]!)
    for (let i = 1; i < ps.length; i++) t.ok(ps[i]! >= ps[i - 1]!, `${name}: percentiles ascend`)
    for (const p of ps) { t.ok(p <= v.max!, `${name}: ${p} <= max ${v.max}`); checked++ }
  }
  t.ok(checked >= 30, `${checked} percentiles checked`)
  const e = parseExposition(m.toPrometheus())
  for (const name of ['ml_prediction_latency_quantile_ms', 'ml_queue_wait_quantile_ms', 'ml_inference_latency_quantile_ms']) {
    const max = sample(e, `${name}{quantile="1"}`)
    for (const q of ['0.5', '0.9', '0.95', '0.99', '0.999']) t.ok(sample(e, `${name}{quantile="${q}"}`) <= max, `${name} q${q} <= max`)
  }
})

t.test('event-loop delay leaves out the sampling period, and still sees a blocked loop', async (t) => {
  const m = new ServiceMetrics({ processMetrics: true })
  t.teardown(() => m.close())
  await new Promise((resolve) => setTimeout(resolve, 400)) // idle: ~40 samples
  let json = m.toJSON()
  const idle = json.event_loop_delay_ms!
  t.ok(idle.count >= 10, `sampled (${idle.count})`)
  // monitorEventLoopDelay({ resolution: 10 }) read p50 ~10 ms here: the period itself.
  t.ok(idle.p50! < 5, `idle p50 ${idle.p50} ms is well under the 10 ms period`)
  const e = parseExposition(m.toPrometheus())
  t.ok(sample(e, 'ml_process_event_loop_delay_ms{quantile="0.5"}') < 5)
  t.equal(e.types.get('ml_process_event_loop_delay_ms'), 'summary')
  const sumBefore = sample(e, 'ml_process_event_loop_delay_ms_sum')

  const until = performance.now() + 60
  while (performance.now() < until) { /* block the loop 60 ms */ }
  await new Promise((resolve) => setTimeout(resolve, 30))
  json = m.toJSON()
  t.ok(json.event_loop_delay_ms!.max! >= 40, `a 60 ms block is seen (max ${json.event_loop_delay_ms!.max} ms)`)
  t.ok(json.lifetime.event_loop_delay_ms!.count >= json.event_loop_delay_ms!.count)
  t.ok(sample(parseExposition(m.toPrometheus()), 'ml_process_event_loop_delay_ms_sum') >= sumBefore + 40,
    '_sum grows by the delay (never by negative samples)')
})
