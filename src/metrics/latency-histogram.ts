/**
 * An hdr-histogram-js histogram of integer values (microseconds for times, rows for batch sizes)
 * plus the exact sum, so the mean and Prometheus `_sum` are exact rather than bucket midpoints.
 *
 * Why these settings (SERVING-NOTES §4, STYLE B11.8):
 * - hdr-histogram-js drops the fraction of a recorded value, so times are recorded as integer µs,
 *   never fractional ms (0.41 ms would become 0).
 * - JS implementation, not WASM: WASM histograms need `initWebAssemblySync()` and `destroy()`.
 *   `recordValue` costs ~100-140 ns when the histogram is reached through a field, as here (it
 *   computes its index with Math.log2/Math.pow); ~25 ns figures only appear when V8 can constant-
 *   fold a module-level histogram's configuration. bench/micro/metrics-record.bench.ts measures
 *   the real path.
 * - `autoResize: false`: the counts array is allocated once here; recording never grows it. Values
 *   outside [0, highest] are clamped, because an out-of-range record would throw.
 * - `bitBucketSize: 64`: Int32 counts would wrap after 2^31 records in one bucket (a batch size of
 *   1 recorded ~50k times a second overflows in half a day); float64 counts are exact to 2^53.
 * - Percentiles are computed only when read.
 */

import { build } from 'hdr-histogram-js'
import type { Histogram } from 'hdr-histogram-js'

/**
 * Hot numeric state lives in Float64Arrays, not number fields. With `target: ES2022` class fields
 * use define semantics: each declared field starts as `undefined`, V8 gives it the generic tagged
 * representation, and every store of a non-Smi number then allocates a HeapNumber. Measured: a
 * `sum += double` field update cost 16 ns and caused 323 scavenges per 2e7 calls, against 7 ns and
 * none with plain constructor assignment; typed-array stores never allocate, whatever the emit.
 */
const kSum = 0
const kMax = 1

/** 60 s in µs: anything slower is clamped here (and still lands in Prometheus' +Inf bucket). */
export const kDefaultHighestUs = 60_000_000

export interface LatencyHistogramOptions {
  /** Highest value tracked; larger values are recorded as this value. Default 60 s in µs. */
  readonly highest?: number
}

export class LatencyHistogram {
  readonly highest: number
  private readonly histogram: Histogram
  /** [sum, max] of the recorded values; typed arrays for the reason at `kSum`. */
  private readonly stats: Float64Array

  constructor (options: LatencyHistogramOptions = {}) {
    const highest = options.highest ?? kDefaultHighestUs
    if (!Number.isSafeInteger(highest) || highest < 2) {
      throw new RangeError(`highest must be an integer >= 2, got ${highest}`)
    }
    this.highest = highest
    this.histogram = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: highest,
      numberOfSignificantValueDigits: 3,
      autoResize: false,
      bitBucketSize: 64,
      useWebAssembly: false,
    })
    this.stats = new Float64Array(2)
  }

  /**
   * Records one value. NaN and negatives count as 0, values above `highest` as `highest`, and the
   * fraction is dropped. Returns the value actually recorded so callers can feed the same integer
   * to other views (the Prometheus buckets) and stay consistent with this one.
   */
  record (value: number): number {
    // `!(value >= 0)` is also true for NaN, which would otherwise corrupt the histogram's count.
    const v = !(value >= 0) ? 0 : value > this.highest ? this.highest : Math.trunc(value)
    this.histogram.recordValue(v)
    const stats = this.stats
    stats[kSum] += v
    if (v > stats[kMax]!) stats[kMax] = v
    return v
  }

  get count (): number {
    return this.histogram.totalCount
  }

  /** Exact sum of the recorded (clamped, truncated) values. */
  get total (): number {
    return this.stats[kSum]!
  }

  /** Exact mean of the recorded values, or null when nothing was recorded. */
  mean (): number | null {
    const n = this.histogram.totalCount
    return n === 0 ? null : this.stats[kSum]! / n
  }

  /**
   * Largest recorded value, exact (hdr's own `maxValue` is the top of its bucket, e.g. 2 000 895
   * for 2 000 000), or null when empty.
   */
  max (): number | null {
    return this.histogram.totalCount === 0 ? null : this.stats[kMax]!
  }

  /**
   * Value at a percentile in [0, 100], or null when empty. hdr answers the highest value equivalent
   * to the bucket the percentile falls in (2 000 895 for a bucket holding 2 000 000), which can lie
   * above every recorded value; it is capped at the exact max so that no percentile exceeds `max()`.
   */
  percentile (percentile: number): number | null {
    if (this.histogram.totalCount === 0) return null
    const value = this.histogram.getValueAtPercentile(percentile)
    const max = this.stats[kMax]!
    return value > max ? max : value
  }

  /**
   * Adds every value recorded in `other` (same `highest`, so same bucket layout: hdr then adds the
   * counts arrays index by index). Read side only: it walks the whole counts array.
   */
  add (other: LatencyHistogram): void {
    if (other.highest !== this.highest) throw new RangeError(`cannot add a histogram of highest ${other.highest} to one of ${this.highest}`)
    if (other.histogram.totalCount === 0) return
    this.histogram.add(other.histogram)
    const stats = this.stats
    stats[kSum] += other.stats[kSum]!
    if (other.stats[kMax]! > stats[kMax]!) stats[kMax] = other.stats[kMax]!
  }

  reset (): void {
    this.histogram.reset()
    this.stats.fill(0)
  }
}
