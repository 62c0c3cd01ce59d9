/**
 * Every figure the service reports, owned by one object: the hot path records into it, and the
 * `/metrics` (JSON) and `/metrics/prometheus` routes render it (CONTRACT.md, HTTP table).
 *
 * Intervals (SERVING-NOTES §3.3: say which interval each figure covers):
 * - Recent window (`windowMs`, default 60 s, moving in steps of a sixth of it; see
 *   windowed-histogram.ts): the JSON `latency_ms`, `inference_ms`, `queue_wait_ms`, `batch_size`
 *   and `event_loop_delay_ms`, and the `quantile` samples of the Prometheus summaries. These say
 *   what is happening now: a cold-start outlier leaves them after a window.
 * - Since start: everything else. JSON `lifetime.*` holds the same distributions since start;
 *   counters, the Prometheus `_bucket` histograms and every `_sum`/`_count` are cumulative, so
 *   Prometheus computes rates and windowed quantiles itself with `rate()`.
 * Nothing is reset on read, so two scrapers see the same numbers.
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

import { performance } from 'node:perf_hooks'
import { kRequestErrorCodes } from '../errors.js'
import { isLong } from '../protocol/answer-values.js'
import { kDefaultHighestUs, type LatencyHistogram } from './latency-histogram.js'
import { BucketCounts, PrometheusWriter, label } from './prometheus-writer.js'
import { WindowedHistogram } from './windowed-histogram.js'

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

/**
 * Error codes with a pre-created counter: those a request can be answered with (errors.ts); the
 * start-up codes would only be series stuck at 0. Anything else counts as ERR_INTERNAL.
 */
const kErrorCodes: readonly string[] = kRequestErrorCodes
const kUnknownErrorCode = 'ERR_INTERNAL'

/** Default length of the recent window (`metrics_window_s`). */
export const kDefaultWindowMs = 60_000

/**
 * Event-loop delay sampling period. Each tick records how late it ran beyond this period, so an
 * idle loop reads ~0, not the period (perf_hooks' monitorEventLoopDelay records the whole
 * interval between its timer's runs, resolution included: ~10 ms on an idle loop at 10 ms).
 */
const kEventLoopSampleMs = 10

export interface ServiceMetricsOptions {
  /** Requests waiting for a worker, read at render time. */
  readonly queueDepth?: () => number
  /** Live inference workers, read at render time. */
  readonly workers?: () => number
  /** Version of the serving model, null while none is loaded. */
  readonly modelVersion?: () => string | null
  /** Symbols with feature state. */
  readonly symbols?: () => number
  /** Symbols dropped from the feature store since start to stay within max_symbols (a counter). */
  readonly symbolsEvicted?: () => number
  /**
   * Adds `ml_process_*` series (CPU, RSS, heap, event-loop delay) to the Prometheus text and
   * `event_loop_delay_ms` to the JSON. Starts a 10 ms sampling timer (unref'd) until `close()`.
   * Default false.
   */
  readonly processMetrics?: boolean
  /**
   * Monotonic clock in ms, for uptime and the recent window; tests inject one (and then call
   * `rotate()` after moving it, as the timer would). Default `performance.now`.
   */
  readonly now?: () => number
  /** Length of the recent window in ms (`metrics_window_s`). Default 60 s. */
  readonly windowMs?: number
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

/** The figures read from elsewhere at render time (see `ServiceMetrics.observe`). */
export type GaugeSources = Pick<ServiceMetricsOptions, 'queueDepth' | 'workers' | 'modelVersion' | 'symbols' | 'symbolsEvicted' | 'extra'>

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

/** The distributions kept over both intervals. */
export interface DistributionsJson {
  /** Server time of successful predictions: request read -> response written. */
  readonly latency_ms: LatencySummaryMs
  /** Model time per inference batch (one sample per batch, not per row). */
  readonly inference_ms: LatencySummaryMs
  /** Enqueue -> dispatch to a worker, per request. */
  readonly queue_wait_ms: LatencySummaryMs
  /** Rows per inference batch. */
  readonly batch_size: BatchSizeSummary
  /** How late the event loop ran its 10 ms sampling timer (only with `processMetrics`). */
  readonly event_loop_delay_ms?: LatencySummaryMs
}

/**
 * The `/metrics` body. The distributions at the top level cover the recent window
 * (`window_seconds`), the same under `lifetime` cover the time since start, and every count
 * outside them is cumulative since start; see the file header.
 */
export interface MetricsJson extends DistributionsJson {
  /** Seconds the top-level distributions cover now: the window setting up to one step more, less just after start. */
  readonly window_seconds: number
  readonly lifetime: DistributionsJson
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
  readonly symbols_evicted: number | null
}

export class ServiceMetrics {
  private readonly now: () => number
  private readonly startMs: number
  private queueDepthFn: (() => number) | null = null
  private workersFn: (() => number) | null = null
  private modelVersionFn: (() => string | null) | null = null
  private symbolsFn: (() => number) | null = null
  private symbolsEvictedFn: (() => number) | null = null
  private extra: NonNullable<ServiceMetricsOptions['extra']> | null = null

  private readonly latency: WindowedHistogram
  private readonly latencyBuckets: BucketCounts
  private readonly inference: WindowedHistogram
  private readonly inferenceBuckets: BucketCounts
  private readonly queueWait: WindowedHistogram
  private readonly queueWaitBuckets: BucketCounts
  private readonly batchSize: WindowedHistogram
  private readonly batchSizeBuckets: BucketCounts
  private readonly confidence: BucketCounts

  /** [predictions, LONG, SHORT, errors]: typed, so increments never allocate (latency-histogram.ts). */
  private readonly counters: Float64Array

  private readonly errorIndex: ReadonlyMap<string, number>
  private readonly errorCounts: Float64Array
  private readonly unknownErrorSlot: number

  private readonly windowed: WindowedHistogram[]
  private rotateTimer: NodeJS.Timeout | null
  private eventLoopDelay: WindowedHistogram | null
  private eventLoopTimer: NodeJS.Timeout | null
  /** [performance.now() at the last event-loop sample]: typed, for the reason at `counters`. */
  private readonly eventLoopLast: Float64Array

  constructor (options: ServiceMetricsOptions = {}) {
    this.now = options.now ?? (() => performance.now())
    this.startMs = this.now()
    this.observe(options)

    const highestUs = options.highestUs ?? kDefaultHighestUs
    const windowMs = options.windowMs ?? kDefaultWindowMs
    const timing = { highest: highestUs, windowMs, originMs: this.startMs }
    this.latency = new WindowedHistogram(timing)
    this.latencyBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.inference = new WindowedHistogram(timing)
    this.inferenceBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.queueWait = new WindowedHistogram(timing)
    this.queueWaitBuckets = new BucketCounts(kLatencyBucketsMs, 1000)
    this.batchSize = new WindowedHistogram({ ...timing, highest: kHighestBatchRows })
    this.batchSizeBuckets = new BucketCounts(kBatchSizeBuckets, 1)
    this.confidence = new BucketCounts(kConfidenceBuckets, 1)

    this.counters = new Float64Array(4)

    // One slot per known code, created here, so recording an error never creates a label set.
    const index = new Map<string, number>()
    for (let i = 0; i < kErrorCodes.length; i++) index.set(kErrorCodes[i]!, i)
    this.errorIndex = index
    this.errorCounts = new Float64Array(kErrorCodes.length)
    this.unknownErrorSlot = index.get(kUnknownErrorCode)!

    this.windowed = [this.latency, this.inference, this.queueWait, this.batchSize]
    this.eventLoopDelay = null
    this.eventLoopTimer = null
    this.eventLoopLast = new Float64Array(1)
    if (options.processMetrics === true) {
      const eventLoopDelay = new WindowedHistogram(timing)
      this.eventLoopDelay = eventLoopDelay
      this.windowed.push(eventLoopDelay)
      const last = this.eventLoopLast
      last[0] = performance.now()
      // Real time, not the injected clock: this measures the real loop. Lateness beyond the
      // period in µs; an early run (libuv's loop clock is in whole ms) records 0.
      this.eventLoopTimer = setInterval(() => {
        const t = performance.now()
        eventLoopDelay.record((t - last[0]! - kEventLoopSampleMs) * 1000)
        last[0] = t
      }, kEventLoopSampleMs).unref()
    }

    // The window moves on this timer, not on the hot path (reads also move it, to the exact slot).
    this.rotateTimer = setInterval(() => { this.rotate() }, this.latency.slotMs).unref()
  }

  // ---- hot path: no allocation ------------------------------------------------------------

  /** Server time of one successful prediction, read -> response written, in µs. */
  recordRequest (serverUs: number): void {
    this.latencyBuckets.observe(this.latency.record(serverUs))
  }

  /**
   * One prediction served. LONG by the answers' rule (protocol/answer-values.ts isLong);
   * confidence = max(p, 1 - p), unrounded here. A probability outside [0, 1] (NaN included)
   * counts as a prediction but not as a confidence.
   */
  recordPrediction (probabilityLong: number): void {
    const counters = this.counters
    counters[kPredictions]!++
    let confidence: number
    if (isLong(probabilityLong)) {
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

  /** Moves the recent window to now (the timer calls this once per step; every read does too). */
  rotate (): void {
    const now = this.now()
    for (const h of this.windowed) h.rotate(now)
  }

  uptimeSeconds (): number {
    return round3((this.now() - this.startMs) / 1000)
  }

  /** Mean server latency in ms without computing percentiles (for `/health`), or null. */
  meanLatencyMs (): number | null {
    return usToMs(this.latency.lifetimeMean())
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
    this.rotate()
    // Each windowed histogram is merged once: window first, then the folded past added to it.
    const [latencyW, latencyL] = summarizeBoth(this.latency, summarizeMs)
    const [inferenceW, inferenceL] = summarizeBoth(this.inference, summarizeMs)
    const [queueWaitW, queueWaitL] = summarizeBoth(this.queueWait, summarizeMs)
    const [batchW, batchL] = summarizeBoth(this.batchSize, summarizeRows)
    const eld = this.eventLoopDelay === null ? null : summarizeBoth(this.eventLoopDelay, summarizeMs)
    return {
      latency_ms: latencyW,
      inference_ms: inferenceW,
      queue_wait_ms: queueWaitW,
      batch_size: batchW,
      ...(eld === null ? {} : { event_loop_delay_ms: eld[0] }),
      window_seconds: round3(this.latency.coveredSeconds(this.now())),
      lifetime: {
        latency_ms: latencyL,
        inference_ms: inferenceL,
        queue_wait_ms: queueWaitL,
        batch_size: batchL,
        ...(eld === null ? {} : { event_loop_delay_ms: eld[1] }),
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
      symbols_evicted: this.symbolsEvictedFn === null ? null : this.symbolsEvictedFn(),
      ...(this.extra === null ? {} : this.extra.json()),
    }
  }

  /**
   * Where the gauges are read at render time. The server registers them once the parts they read
   * exist: those parts record into this object, so they are built after it. Given sources replace
   * the previous ones; absent ones are left as they were.
   */
  observe (sources: GaugeSources): void {
    if (sources.queueDepth !== undefined) this.queueDepthFn = sources.queueDepth
    if (sources.workers !== undefined) this.workersFn = sources.workers
    if (sources.modelVersion !== undefined) this.modelVersionFn = sources.modelVersion
    if (sources.symbols !== undefined) this.symbolsFn = sources.symbols
    if (sources.symbolsEvicted !== undefined) this.symbolsEvictedFn = sources.symbolsEvicted
    if (sources.extra !== undefined) this.extra = sources.extra
  }

  /** Text exposition format 0.0.4 (serve with `kPrometheusContentType`). Synchronous. */
  toPrometheus (): string {
    this.rotate()
    const w = new PrometheusWriter()
    const window = `over the last ${formatSeconds(this.latency.windowMs)} s`

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
      `Prediction latency percentiles in ms from an HDR histogram (3 significant digits) ${window}; _sum and _count since start`,
      this.latency)
    writeQuantiles(w, 'ml_inference_latency_quantile_ms',
      `Inference latency percentiles per batch in ms from an HDR histogram ${window}; _sum and _count since start`, this.inference)
    writeQuantiles(w, 'ml_queue_wait_quantile_ms',
      `Queue wait percentiles in ms from an HDR histogram ${window}; _sum and _count since start`, this.queueWait)

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
    if (this.symbolsEvictedFn !== null) {
      w.family('ml_feature_symbols_evicted_total', 'counter', 'Symbols dropped from the feature store to stay within max_symbols, since start')
      w.sample('ml_feature_symbols_evicted_total', '', this.symbolsEvictedFn())
    }
    if (this.extra !== null) this.extra.prometheus(w)
    if (this.eventLoopDelay !== null) writeProcessMetrics(w, this.eventLoopDelay, window)

    return w.toString()
  }

  /** Stops the timers (window rotation, event-loop sampling); process metrics end. Idempotent. */
  close (): void {
    if (this.rotateTimer !== null) {
      clearInterval(this.rotateTimer)
      this.rotateTimer = null
    }
    if (this.eventLoopTimer !== null) {
      clearInterval(this.eventLoopTimer)
      this.eventLoopTimer = null
    }
    if (this.eventLoopDelay !== null) {
      this.windowed.splice(this.windowed.indexOf(this.eventLoopDelay), 1)
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

/** "60", "12.5": the window length as written in HELP text. */
function formatSeconds (ms: number): string {
  return String(Math.round(ms) / 1000)
}

/** [window, lifetime] summaries of one windowed histogram, merging its ring once. */
function summarizeBoth<T> (h: WindowedHistogram, summarize: (merged: LatencyHistogram) => T): [T, T] {
  const window = summarize(h.window())
  return [window, summarize(h.lifetime(true))]
}

function summarizeRows (h: LatencyHistogram): BatchSizeSummary {
  return {
    p50: h.percentile(50),
    p95: h.percentile(95),
    p99: h.percentile(99),
    max: h.max(),
    mean: roundOrNull(h.mean(), 1e3),
    count: h.count,
  }
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

/**
 * HDR percentiles as a Prometheus summary (quantile samples plus _sum and _count), the type that
 * may carry a `quantile` label; values in ms. As in Prometheus' client libraries (client_golang's
 * MaxAge, prom-client's maxAgeSeconds), the quantiles cover the recent window and `_sum`/`_count`
 * are cumulative since start, so `rate()` works on them. An empty window reports NaN quantiles,
 * as Prometheus' own summaries do.
 */
function writeQuantiles (w: PrometheusWriter, name: string, help: string, h: WindowedHistogram): void {
  w.family(name, 'summary', help)
  const window = h.window()
  for (const [q, percentile] of kQuantiles) {
    const us = percentile === 100 ? window.max() : window.percentile(percentile)
    w.sample(name, `quantile="${q}"`, usToMs(us) ?? NaN)
  }
  w.sample(`${name}_sum`, '', h.lifetimeTotal / 1000)
  w.sample(`${name}_count`, '', h.lifetimeCount)
}

function writeProcessMetrics (w: PrometheusWriter, eventLoopDelay: WindowedHistogram, window: string): void {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  w.family('ml_process_cpu_seconds_total', 'counter', 'User and system CPU time of the process in seconds')
  w.sample('ml_process_cpu_seconds_total', '', (cpu.user + cpu.system) / 1e6)
  w.family('ml_process_resident_memory_bytes', 'gauge', 'Resident set size in bytes')
  w.sample('ml_process_resident_memory_bytes', '', memory.rss)
  w.family('ml_process_heap_used_bytes', 'gauge', 'V8 heap used in bytes')
  w.sample('ml_process_heap_used_bytes', '', memory.heapUsed)
  // NaN quantiles until the first 10 ms sample.
  writeQuantiles(w, 'ml_process_event_loop_delay_ms',
    `Event-loop delay in ms: how late a 10 ms timer ran, the 10 ms itself not counted; percentiles ${window}, _sum and _count since start`,
    eventLoopDelay)
}
