/**
 * Prometheus text exposition format 0.0.4, written by hand, plus the fixed-bucket counters that
 * back our histograms.
 *
 * Why not prom-client's Histogram on the hot path: its `observe()` builds a closure and a label
 * object per call and looks the bucket up by number-to-string key. Measured (bench/micro/
 * metrics-record.bench.ts, same run): prom-client ~1000-1400 ns and ~100 scavenges per million
 * requests for three observes and an increment, against ~20 ns and no allocation for
 * `BucketCounts.observe`. Rendering by hand also keeps `toPrometheus()`
 * synchronous (prom-client's `registry.metrics()` is async) and shares nothing between instances.
 * prom-client is a dev dependency only: the tests use it as the oracle for the format and the
 * content type.
 */


/** Text exposition format 0.0.4; the metrics test checks it equals prom-client's constant. */
export const kPrometheusContentType = 'text/plain; version=0.0.4; charset=utf-8'

/**
 * Counts per bucket for a Prometheus histogram. Bounds are in the unit values are recorded in
 * (integer µs for times), so the `value <= bound` test is exact; `scale` converts to the exposed
 * unit (µs -> ms) only when rendering.
 *
 *   counts: [ <= b0 | (b0, b1] | ... | (b[n-2], b[n-1]] | > b[n-1] (+Inf only) ]   non-cumulative
 */
export class BucketCounts {
  /** Upper bounds in the recorded unit, ascending. */
  readonly bounds: Float64Array
  /** The `le` label of each bound, in the exposed unit, and the JSON key for it. */
  readonly labels: readonly string[]
  /** Non-cumulative counts; index `bounds.length` is the overflow (above the last bound). */
  readonly counts: Float64Array
  /** Divides recorded values when rendering (1000 for µs recorded, ms exposed). */
  readonly scale: number
  /**
   * [count, sum]. A typed array rather than number fields: under ES2022 define semantics a
   * declared number field is tagged, and each double store would allocate (see latency-histogram.ts).
   */
  private readonly totals: Float64Array

  /** `boundsExposed` are in the exposed unit (ms for times); `scale` = recorded units per exposed unit. */
  constructor (boundsExposed: readonly number[], scale = 1) {
    if (boundsExposed.length === 0) throw new RangeError('a histogram needs at least one bucket')
    for (let i = 1; i < boundsExposed.length; i++) {
      if (!(boundsExposed[i]! > boundsExposed[i - 1]!)) {
        throw new RangeError(`bucket bounds must be strictly ascending, got ${boundsExposed.join(',')}`)
      }
    }
    // Rounded so 0.05 ms becomes exactly 50 µs rather than 50.00000000000001.
    this.bounds = Float64Array.from(boundsExposed, (b) => Math.round(b * scale * 1e6) / 1e6)
    this.labels = boundsExposed.map((b) => formatNumber(b))
    this.counts = new Float64Array(boundsExposed.length + 1)
    this.scale = scale
    this.totals = new Float64Array(2)
  }

  get count (): number {
    return this.totals[0]!
  }

  /** Sum of the observed values, in the recorded unit. */
  get sum (): number {
    return this.totals[1]!
  }

  observe (value: number): void {
    const bounds = this.bounds
    const n = bounds.length
    let i = 0
    // Linear scan: ≤ 14 bounds and most values land in the first few.
    while (i < n && value > bounds[i]!) i++
    this.counts[i]!++
    this.totals[0]!++
    this.totals[1] += value
  }

  reset (): void {
    this.counts.fill(0)
    this.totals.fill(0)
  }
}

/** Number formatting as Prometheus parses it (Go's ParseFloat): NaN, +Inf, -Inf, else JS text. */
export function formatNumber (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return `${value}`
}

/** Label values escape backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp (help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

export type PrometheusType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

/** Accumulates one exposition; `toString()` ends with a line feed as the format requires. */
export class PrometheusWriter {
  private text: string

  constructor () {
    this.text = ''
  }

  /** `# HELP` and `# TYPE` for one metric family; write it once, before the family's samples. */
  family (name: string, type: PrometheusType, help: string): this {
    this.text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
    return this
  }

  /** One sample. `labels` is already rendered (`code="ERR_X"`) or empty; see `label()`. */
  sample (name: string, labels: string, value: number): this {
    this.text += labels === ''
      ? `${name} ${formatNumber(value)}\n`
      : `${name}{${labels}} ${formatNumber(value)}\n`
    return this
  }

  /** A whole histogram family: cumulative `_bucket` lines up to `+Inf`, then `_sum` and `_count`. */
  histogram (name: string, help: string, buckets: BucketCounts): this {
    this.family(name, 'histogram', help)
    const { labels, counts } = buckets
    let cumulative = 0
    for (let i = 0; i < labels.length; i++) {
      cumulative += counts[i]!
      this.text += `${name}_bucket{le="${labels[i]!}"} ${formatNumber(cumulative)}\n`
    }
    this.text += `${name}_bucket{le="+Inf"} ${formatNumber(buckets.count)}\n`
    this.text += `${name}_sum ${formatNumber(buckets.sum / buckets.scale)}\n`
    this.text += `${name}_count ${formatNumber(buckets.count)}\n`
    return this
  }

  toString (): string {
    return this.text
  }
}

/** `name="value"` with the value escaped. */
export function label (name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`
}
