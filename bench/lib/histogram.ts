/**
 * Latency histograms of the load generator: hdr-histogram-js, integer microseconds, 3 significant
 * digits (SERVING-NOTES §4; STYLE C8). Each generator thread records into its own histogram and
 * ships it encoded (compressed base64, as autocannon's `lib/histUtil.js` does); the parent decodes
 * and adds. Adding hdr histograms of the same configuration is exact: counts per bucket add, so
 * the merged percentiles are those of one histogram that had recorded every value
 * (test/bench/histogram-merge.test.ts checks it against a single histogram).
 *
 * Why these settings:
 * - integer µs: hdr-histogram-js drops the fraction, so fractional ms would record 0.41 ms as 0.
 * - JS, not WASM: nothing to `destroy()`, and recording costs ~0.1 µs, far below a request.
 * - autoResize: a stalled run can record minutes; the bench must not throw on a long tail.
 */

import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64 } from 'hdr-histogram-js'
import type { Histogram } from 'hdr-histogram-js'

export type { Histogram }

/** Initial top of the range: 60 s in µs (autoResize grows it if ever needed). */
const kHighestUs = 60_000_000

export function createHistogram (): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: kHighestUs,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 32,
    autoResize: true,
    useWebAssembly: false,
  })
}

export function encodeHistogram (histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram)
}

export function decodeHistogram (encoded: string): Histogram {
  return decodeFromCompressedBase64(encoded, 32, false)
}

/** A fresh histogram holding the sum of the encoded ones. */
export function mergeEncoded (encoded: readonly string[]): Histogram {
  const merged = createHistogram()
  for (const e of encoded) merged.add(decodeHistogram(e))
  return merged
}

/** The percentiles every table and result carries, in µs. null when nothing was recorded. */
export interface LatencySummary {
  readonly count: number
  readonly min: number | null
  readonly mean: number | null
  readonly p50: number | null
  readonly p90: number | null
  readonly p95: number | null
  readonly p99: number | null
  readonly p999: number | null
  readonly max: number | null
}

export const kPercentiles: ReadonlyArray<readonly [keyof LatencySummary, number]> = [
  ['p50', 50], ['p90', 90], ['p95', 95], ['p99', 99], ['p999', 99.9],
]

export function summarize (histogram: Histogram): LatencySummary {
  const count = histogram.totalCount
  if (count === 0) {
    return { count: 0, min: null, mean: null, p50: null, p90: null, p95: null, p99: null, p999: null, max: null }
  }
  return {
    count,
    min: histogram.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : histogram.minNonZeroValue,
    mean: Math.round(histogram.mean),
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p95: histogram.getValueAtPercentile(95),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    // Not `maxValue`: that is the exact value on a histogram that recorded it but the bucket's top
    // after add(), so a merged and a single histogram would disagree. The bucket's top is what every
    // percentile reports too (3 significant digits), which also keeps p99.9 <= max.
    max: histogram.getValueAtPercentile(100),
  }
}
