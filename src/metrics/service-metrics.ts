/**
 * Every figure the service reports, owned by one object: the hot path records into it, and the
 * `/metrics` (JSON) and `/metrics/prometheus` routes render it (CONTRACT.md, HTTP table).
 *
 * Interval: every figure is cumulative since this object was constructed (process start in
 * practice). Nothing is reset on read, so two scrapers see the same numbers, and Prometheus
 * computes rates and windowed quantiles from the `_bucket` counters with `rate()`. The hdr
 * percentiles (JSON, and the `*_quantile_ms` gauges) are therefore lifetime percentiles, not a
 * sliding window (SERVING-NOTES §3.3: say which interval each figure covers).
 *
 * Each time distribution is kept twice, on purpose (SERVING-NOTES §3.3):
 * - an hdr histogram of integer µs, 3 significant digits, for the JSON percentiles;
 * - fixed Prometheus buckets in ms, resolving 0.05–10 ms, for `_bucket`/`_sum`/`_count`.
 * Both are fed the same clamped integer µs, so their counts and sums agree exactly.
 *
 * Hot-path methods (`record*`) allocate nothing: typed-array and number-field updates only.
 * Percentiles and text are computed only when read (STYLE B11.8).
 *
 * Empty distributions: counts are 0 and every statistic (percentiles, max, mean) is null in JSON;
 * gauges whose callback was not given are null in JSON and absent from the Prometheus text.
 */

import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'
import { kErrorTable } from '../errors.js'
import { LatencyHistogram, kDefaultHighestUs } from './latency-histogram.js'
import { BucketCounts, PrometheusWriter, label } from './prometheus-writer.js'

export { kPrometheusContentType } from './prometheus-writer.js'

/** Prometheus buckets for every time histogram, in ms (sub-ms resolution for a ~0.1 ms service). */
export const kLatencyBucketsMs: readonly number[] = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000]
export const kConfidenceBuckets: readonly number[] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1]
export const kBatchSizeBuckets: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

/** Batch sizes above this are clamped in the hdr view (the Prometheus view has +Inf). */
const kHighestBatchRows = 1 << 20

/** Quantiles exported as gauges from the hdr histograms: [label, percentile]; "1" is the exact max. */
const kQuantiles: ReadonlyArray<readonly [string, number]> = [
  ['0.5', 50], ['0.9', 90], ['0.95', 95], ['0.99', 99], ['0.999', 99.9], ['1', 100],
]

// Slots of ServiceMetrics.counters.
const kPredictions = 0
const kLong = 1
const kShort = 2
const kErrors = 3

/**
 * JSON keys of the confidence buckets: the bound as written, "1.0" rather than "1" because an
 * integer-like key would be enumerated first and put the top bucket ahead of "0.5".
 */
const kConfidenceJsonKeys: readonly string[] =
  kConfidenceBuckets.map((b) => (Number.isInteger(b) ? b.toFixed(1) : String(b)))

/** Error codes with a pre-created counter; anything else counts as ERR_INTERNAL. */
const kErrorCodes: readonly string[] = Object.keys(kErrorTable)
const kUnknownErrorCode = 'ERR_INTERNAL'

export interface ServiceMetricsOptions {
  /** Requests waiting for a worker, read at render time. */
  readonly queueDepth?: () => number
  /** Live inference workers, read at render time. */
  readonly workers?: () => number
  /** Version of the serving model, null while none is loaded. */
  readonly modelVersion?: () => string | null
  /** Symbols with feature state. */
  readonly symbols?: () => number
  /**
   * Adds `ml_process_*` series (CPU, RSS, heap, event-loop delay) to the Prometheus text. Starts a
   * `monitorEventLoopDelay` timer (10 ms resolution) until `close()`. Default false.
   */
  readonly processMetrics?: boolean
  /** Monotonic clock in ms, for uptime; tests inject one. Default `performance.now`. */
  readonly now?: () => number
  /** Highest recordable time in µs; slower values are clamped. Default 60 s. */
  readonly highestUs?: number
  /**
   * Figures owned elsewhere (model rollout, shadow scoring), rendered on read: `json` is merged
   * into the /metrics body, `prometheus` appends its families to the exposition.
   */
  readonly extra?: {
    readonly json: () => Record<string, unknown>
    readonly prometheus: (w: PrometheusWriter) => void
  }
}

export interface LatencySummaryMs {
  readonly p50: number | null
  readonly p90: number | null
  readonly p95: number | null
  readonly p99: number | null
  readonly p999: number | null
  readonly max: number | null
  readonly mean: number | null
  readonly count: number
}

export interface BatchSizeSummary {
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
  readonly max: number | null
  readonly mean: number | null
  readonly count: number
}

/** The `/metrics` body. Every figure is cumulative since start; see the file header. */
export interface MetricsJson {
  /** Server time of successful predictions: request read -> response written. */
  readonly latency_ms: LatencySummaryMs
  /** Model time per inference batch (one sample per batch, not per row). */
  readonly inference_ms: LatencySummaryMs
  /** Enqueue -> dispatch to a worker, per request. */
  readonly queue_wait_ms: LatencySummaryMs
  /** Rows per inference batch. */
  readonly batch_size: BatchSizeSummary
  readonly predictions_total: number
  readonly predictions_by_direction: { readonly LONG: number, readonly SHORT: number }
  readonly errors_total: number
  /** Only codes with a non-zero count. */
  readonly errors_by_code: Readonly<Record<string, number>>
  readonly confidence: {
    readonly mean: number | null
    /** Non-cumulative counts keyed by upper bound, "0.5" .. "1.0": "0.55" counts (0.5, 0.55]. */
    readonly buckets: Readonly<Record<string, number>>
  }
  readonly uptime_seconds: number
  readonly queue_depth: number | null
  readonly workers: number | null
  readonly model_version: string | null
  readonly symbols: number | null
}

export class ServiceMetrics {
  private readonly now: () => number
  private readonly startMs: number
  private readonly queueDepthFn: (() => number) | null
  private readonly workersFn: (() => number) | null
  private readonly modelVersionFn: (() => string | null) | null
  private readonly symbolsFn: (() => number) | null
  private readonly extra: NonNullable<ServiceMetricsOptions['extra']> | null

  private readonly latency: LatencyHistogram
  private readonly latencyBuckets: BucketCounts
  private readonly inference: LatencyHistogram
  private readonly inferenceBuckets: BucketCounts
  private readonly queueWait: LatencyHistogram
  private readonly queueWaitBuckets: BucketCounts
  private readonly batchSize: LatencyHistogram
  private readonly batchSizeBuckets: BucketCounts
  private readonly confidence: BucketCounts

  /** [predictions, LONG, SHORT, errors]: typed, so increments never allocate (latency-histogram.ts). */
  private readonly counters: Float64Array

  private readonly errorIndex: ReadonlyMap<string, number>
  private readonly errorCounts: Float64Array
  private readonly unknownErrorSlot: number

  private eventLoopDelay: IntervalHistogram | null

  constructor (options: ServiceMetricsOptions = {}) {
    this.now = options.now ?? (() => performance.now())
    this.startMs = this.now()
    this.queueDepthFn = options.queueDepth ?? null
    this.workersFn = options.workers ?? null
    this.modelVersionFn = options.modelVersion ?? null
    this.symbolsFn = options.symbols ?? null
    this.extra = options.extra ?? null

    const highestUs = options.highestUs ?? kDefaultHighestUs
    this.latency = new LatencyHistogram({ highest: highestUs })
    this.latencyBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.inference = new LatencyHistogram({ highest: highestUs })
    this.inferenceBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.queueWait = new LatencyHistogram({ highest: highestUs })
    this.queueWaitBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.batchSize = new LatencyHistogram({ highest: kHighestBatchRows })
    this.batchSizeBuckets = new BucketCounts(kBatchSizeBuckets, 1)
    this.confidence = new BucketCounts(kConfidenceBuckets, 1)

    this.counters = new Float64Array(4)

    // One slot per known code, created here, so recording an error never creates a label set.
    const index = new Map<string, number>()
    for (let i = 0; i < kErrorCodes.length; i++) index.set(kErrorCodes[i]!, i)
    this.errorIndex = index
    this.errorCounts = new Float64Array(kErrorCodes.length)
    this.unknownErrorSlot = index.get(kUnknownErrorCode)!

    this.eventLoopDelay = null
    if (options.processMetrics === true) {
      this.eventLoopDelay = monitorEventLoopDelay({ resolution: 10 })
      this.eventLoopDelay.enable()
    }
  }

  // ---- hot path: no allocation ------------------------------------------------------------

  /** Server time of one successful prediction, read -> response written, in µs. */
  recordRequest (serverUs: number): void {
    this.latencyBuckets.observe(this.latency.record(serverUs))
  }

  /**
   * One prediction served. LONG when p >= 0.5 (CONTRACT.md); confidence = max(p, 1 - p). A
   * probability outside [0, 1] (NaN included) counts as a prediction but not as a confidence.
   */
  recordPrediction (probabilityLong: number): void {
    const counters = this.counters
    counters[kPredictions]!++
    let confidence: number
    if (probabilityLong >= 0.5) {
      counters[kLong]!++
      confidence = probabilityLong
    } else {
      counters[kShort]!++
      confidence = 1 - probabilityLong
    }
    if (confidence <= 1) this.confidence.observe(confidence)
  }

  /** One inference batch: its row count and the model's time for it in µs. */
  recordBatch (rows: number, inferenceUs: number): void {
    this.batchSizeBuckets.observe(this.batchSize.record(rows))
    this.inferenceBuckets.observe(this.inference.record(inferenceUs))
  }

  /** One request's wait from enqueue to dispatch, in µs. */
  recordQueueWait (waitUs: number): void {
    this.queueWaitBuckets.observe(this.queueWait.record(waitUs))
  }

  /** One failed request by stable code (`kErrorTable`); unknown codes count as ERR_INTERNAL. */
  recordError (code: string): void {
    const slot = this.errorIndex.get(code)
    this.errorCounts[slot === undefined ? this.unknownErrorSlot : slot]!++
    this.counters[kErrors]!++
  }

  // ---- read side --------------------------------------------------------------------------

  uptimeSeconds (): number {
    return round3((this.now() - this.startMs) / 1000)
  }

  /** Mean server latency in ms without computing percentiles (for `/health`), or null. */
  meanLatencyMs (): number | null {
    return usToMs(this.latency.mean())
  }

  get predictionsTotal (): number {
    return this.counters[kPredictions]!
  }

  get errorsTotal (): number {
    return this.counters[kErrors]!
  }

  toJSON (): MetricsJson {
    const errorsByCode: Record<string, number> = {}
    for (let i = 0; i < kErrorCodes.length; i++) {
      if (this.errorCounts[i]! > 0) errorsByCode[kErrorCodes[i]!] = this.errorCounts[i]!
    }
    const confidenceBuckets: Record<string, number> = {}
    const conf = this.confidence
    for (let i = 0; i < kConfidenceJsonKeys.length; i++) confidenceBuckets[kConfidenceJsonKeys[i]!] = conf.counts[i]!
    const batch = this.batchSize
    return {
      latency_ms: summarizeMs(this.latency),
      inference_ms: summarizeMs(this.inference),
      queue_wait_ms: summarizeMs(this.queueWait),
      batch_size: {
        p50: batch.percentile(50),
        p95: batch.percentile(95),
        p99: batch.percentile(99),
        max: batch.max(),
        mean: roundOrNull(batch.mean(), 1e3),
        count: batch.count,
      },
      predictions_total: this.counters[kPredictions]!,
      predictions_by_direction: { LONG: this.counters[kLong]!, SHORT: this.counters[kShort]! },
      errors_total: this.counters[kErrors]!,
      errors_by_code: errorsByCode,
      confidence: {
        mean: conf.count === 0 ? null : roundOrNull(conf.sum / conf.count, 1e6),
        buckets: confidenceBuckets,
      },
      uptime_seconds: this.uptimeSeconds(),
      queue_depth: this.queueDepthFn === null ? null : this.queueDepthFn(),
      workers: this.workersFn === null ? null : this.workersFn(),
      model_version: this.modelVersionFn === null ? null : this.modelVersionFn(),
      symbols: this.symbolsFn === null ? null : this.symbolsFn(),
      ...(this.extra === null ? {} : this.extra.json()),
    }
  }

  /** Text exposition format 0.0.4 (serve with `kPrometheusContentType`). Synchronous. */
  toPrometheus (): string {
    const w = new PrometheusWriter()

    w.histogram('ml_prediction_latency_ms',
      'Server time of successful predictions, request read to response written, in ms, since start',
      this.latencyBuckets)
    w.family('ml_prediction_count_total', 'counter', 'Predictions served since start')
    w.sample('ml_prediction_count_total', '', this.counters[kPredictions]!)
    w.family('ml_prediction_direction_total', 'counter', 'Predictions by direction since start')
    w.sample('ml_prediction_direction_total', 'direction="LONG"', this.counters[kLong]!)
    w.sample('ml_prediction_direction_total', 'direction="SHORT"', this.counters[kShort]!)
    w.histogram('ml_confidence_distribution',
      'Prediction confidence max(p, 1 - p), since start', this.confidence)
    w.family('ml_service_uptime_seconds', 'gauge', 'Seconds since the service started')
    w.sample('ml_service_uptime_seconds', '', this.uptimeSeconds())

    w.family('ml_prediction_errors_total', 'counter', 'Failed requests by error code since start')
    for (let i = 0; i < kErrorCodes.length; i++) {
      w.sample('ml_prediction_errors_total', label('code', kErrorCodes[i]!), this.errorCounts[i]!)
    }

    w.histogram('ml_inference_latency_ms', 'Model time per inference batch in ms, since start',
      this.inferenceBuckets)
    w.histogram('ml_queue_wait_ms', 'Per-request wait from enqueue to dispatch in ms, since start',
      this.queueWaitBuckets)
    w.histogram('ml_batch_size', 'Rows per inference batch, since start', this.batchSizeBuckets)

    writeQuantiles(w, 'ml_prediction_latency_quantile_ms',
      'Prediction latency percentiles in ms from an HDR histogram (3 significant digits), since start',
      this.latency)
    writeQuantiles(w, 'ml_inference_latency_quantile_ms',
      'Inference latency percentiles per batch in ms from an HDR histogram, since start', this.inference)
    writeQuantiles(w, 'ml_queue_wait_quantile_ms',
      'Queue wait percentiles in ms from an HDR histogram, since start', this.queueWait)

    if (this.queueDepthFn !== null) {
      w.family('ml_queue_depth', 'gauge', 'Requests waiting for an inference worker')
      w.sample('ml_queue_depth', '', this.queueDepthFn())
    }
    if (this.workersFn !== null) {
      w.family('ml_workers', 'gauge', 'Live inference workers')
      w.sample('ml_workers', '', this.workersFn())
    }
    if (this.modelVersionFn !== null) {
      const version = this.modelVersionFn()
      w.family('ml_model_loaded', 'gauge', '1 while a model is serving, else 0')
      w.sample('ml_model_loaded', '', version === null ? 0 : 1)
      w.family('ml_model_info', 'gauge', 'The serving model version, as a label')
      if (version !== null) w.sample('ml_model_info', label('model_version', version), 1)
    }
    if (this.symbolsFn !== null) {
      w.family('ml_symbols_tracked', 'gauge', 'Symbols with feature state')
      w.sample('ml_symbols_tracked', '', this.symbolsFn())
    }
    if (this.extra !== null) this.extra.prometheus(w)
    if (this.eventLoopDelay !== null) writeProcessMetrics(w, this.eventLoopDelay)

    return w.toString()
  }

  /** Stops the event-loop delay monitor, if `processMetrics` started one. Idempotent. */
  close (): void {
    if (this.eventLoopDelay !== null) {
      this.eventLoopDelay.disable()
      this.eventLoopDelay = null
    }
  }
}

function round3 (value: number): number {
  return Math.round(value * 1e3) / 1e3
}

function roundOrNull (value: number | null, factor: number): number | null {
  return value === null ? null : Math.round(value * factor) / factor
}

/** µs -> ms rounded to whole µs (3 decimals), null stays null. */
function usToMs (us: number | null): number | null {
  return us === null ? null : Math.round(us) / 1000
}

function summarizeMs (h: LatencyHistogram): LatencySummaryMs {
  return {
    p50: usToMs(h.percentile(50)),
    p90: usToMs(h.percentile(90)),
    p95: usToMs(h.percentile(95)),
    p99: usToMs(h.percentile(99)),
    p999: usToMs(h.percentile(99.9)),
    max: usToMs(h.max()),
    mean: usToMs(h.mean()),
    count: h.count,
  }
}

/** Empty histograms report NaN quantiles, as Prometheus' own summaries do. */
/**
 * HDR percentiles as a Prometheus summary (quantile samples plus _sum and _count), the type that
 * may carry a `quantile` label; values in ms, cumulative since start.
 */
function writeQuantiles (w: PrometheusWriter, name: string, help: string, h: LatencyHistogram): void {
  w.family(name, 'summary', help)
  for (const [q, percentile] of kQuantiles) {
    const us = percentile === 100 ? h.max() : h.percentile(percentile)
    w.sample(name, `quantile="${q}"`, usToMs(us) ?? NaN)
  }
  w.sample(`${name}_sum`, '', h.total / 1000)
  w.sample(`${name}_count`, '', h.count)
}

function writeProcessMetrics (w: PrometheusWriter, eventLoopDelay: IntervalHistogram): void {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  w.family('ml_process_cpu_seconds_total', 'counter', 'User and system CPU time of the process in seconds')
  w.sample('ml_process_cpu_seconds_total', '', (cpu.user + cpu.system) / 1e6)
  w.family('ml_process_resident_memory_bytes', 'gauge', 'Resident set size in bytes')
  w.sample('ml_process_resident_memory_bytes', '', memory.rss)
  w.family('ml_process_heap_used_bytes', 'gauge', 'V8 heap used in bytes')
  w.sample('ml_process_heap_used_bytes', '', memory.heapUsed)
  // perf_hooks reports ns; NaN until the first 10 ms sample (min/percentiles of an empty histogram).
  const name = 'ml_process_event_loop_delay_ms'
  w.family(name, 'summary', 'Event-loop delay percentiles in ms since start (10 ms sampling)')
  const empty = eventLoopDelay.count === 0
  for (const [q, percentile] of kQuantiles) {
    const ns = percentile === 100 ? eventLoopDelay.max : eventLoopDelay.percentile(percentile)
    w.sample(name, `quantile="${q}"`, empty ? NaN : Math.round(ns / 1e3) / 1e3)
  }
  w.sample(`${name}_sum`, '', empty ? 0 : (eventLoopDelay.mean * eventLoopDelay.count) / 1e6)
  w.sample(`${name}_count`, '', eventLoopDelay.count)
}
