/**
 * The server's own view of a load, Triton style (SERVING-NOTES §4 item 7): server time per
 * request, queue wait, inference time per batch, batch size, errors by code.
 *
 * The server's figures are cumulative since its start (src/metrics/service-metrics.ts), so a
 * load's share is the difference of two scrapes of /metrics/prometheus, one before and one after.
 * Counts and sums subtract exactly, so means are exact; percentiles are interpolated inside the
 * fixed Prometheus buckets, so they are approximate (good to a bucket: 0.05/0.1/0.25/0.5/0.75/1/
 * 2.5/5/10 ms...) and labelled so. The JSON /metrics percentiles cannot be used: they cover the
 * server's recent window or its whole life (`lifetime`), not exactly one load.
 */

export interface PromHistogram {
  /** [upper bound, cumulative count], ascending, +Inf last. */
  readonly buckets: Array<[number, number]>
  sum: number
  count: number
}

export interface PromSnapshot {
  readonly histograms: Map<string, PromHistogram>
  /** Every unlabelled-or-labelled sample of the families ending in _total, by full series name. */
  readonly counters: Map<string, number>
}

export interface DistributionDelta {
  readonly count: number
  readonly mean: number | null
  /** Interpolated within Prometheus buckets: approximate. */
  readonly p50: number | null
  readonly p99: number | null
}

export interface ServerBreakdown {
  /** Server time of successful predictions, read -> written (ms). */
  readonly serverMs: DistributionDelta | null
  readonly queueWaitMs: DistributionDelta | null
  /** Model time per batch (ms); one sample per batch. */
  readonly inferenceMs: DistributionDelta | null
  /** Rows per batch. */
  readonly batchSize: DistributionDelta | null
  /** Counter increases during the load, non-zero only (errors by code, predictions...). */
  readonly counters: Readonly<Record<string, number>>
}

const kFamilies: ReadonlyArray<readonly [keyof Omit<ServerBreakdown, 'counters'>, string]> = [
  ['serverMs', 'ml_prediction_latency_ms'],
  ['queueWaitMs', 'ml_queue_wait_ms'],
  ['inferenceMs', 'ml_inference_latency_ms'],
  ['batchSize', 'ml_batch_size'],
]

/** GETs /metrics/prometheus; null when the target has none (the bare baseline server). */
export async function scrapePrometheus (baseUrl: string): Promise<PromSnapshot | null> {
  try {
    const res = await fetch(`${baseUrl}/metrics/prometheus`, { signal: AbortSignal.timeout(5000) })
    const text = await res.text()
    return res.status === 200 ? parsePrometheus(text) : null
  } catch {
    return null
  }
}

export function parsePrometheus (text: string): PromSnapshot {
  const histograms = new Map<string, PromHistogram>()
  const counters = new Map<string, number>()
  const get = (name: string): PromHistogram => {
    let h = histograms.get(name)
    if (h === undefined) { h = { buckets: [], sum: 0, count: 0 }; histograms.set(name, h) }
    return h
  }
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const [, name, labels = '', rawValue] = m as unknown as [string, string, string | undefined, string]
    const value = Number(rawValue)
    if (name.endsWith('_bucket')) {
      const le = /le="([^"]+)"/.exec(labels)
      if (le !== null) get(name.slice(0, -7)).buckets.push([le[1] === '+Inf' ? Infinity : Number(le[1]), value])
    } else if (name.endsWith('_sum')) {
      get(name.slice(0, -4)).sum = value
    } else if (name.endsWith('_count')) {
      get(name.slice(0, -6)).count = value
    } else if (name.endsWith('_total')) {
      counters.set(`${name}${labels}`, value)
    }
  }
  for (const h of histograms.values()) h.buckets.sort((a, b) => a[0] - b[0])
  return { histograms, counters }
}

/** What happened between two scrapes, as a snapshot of differences (families of `after` only). */
export function diffSnapshots (before: PromSnapshot, after: PromSnapshot): PromSnapshot {
  const histograms = new Map<string, PromHistogram>()
  for (const [name, a] of after.histograms) {
    const b = before.histograms.get(name)
    if (b === undefined) continue
    histograms.set(name, {
      buckets: a.buckets.map(([le, c]) => [le, c - (b.buckets.find(([ble]) => ble === le)?.[1] ?? 0)]),
      sum: a.sum - b.sum,
      count: a.count - b.count,
    })
  }
  const counters = new Map<string, number>()
  for (const [series, value] of after.counters) counters.set(series, value - (before.counters.get(series) ?? 0))
  return { histograms, counters }
}

/** The sum of several differences (loads run in rounds). */
export function addSnapshots (parts: readonly PromSnapshot[]): PromSnapshot {
  const histograms = new Map<string, PromHistogram>()
  const counters = new Map<string, number>()
  for (const part of parts) {
    for (const [name, h] of part.histograms) {
      const acc = histograms.get(name)
      if (acc === undefined) { histograms.set(name, { buckets: h.buckets.map(([le, c]) => [le, c]), sum: h.sum, count: h.count }); continue }
      for (const bucket of acc.buckets) bucket[1] += h.buckets.find(([le]) => le === bucket[0])?.[1] ?? 0
      acc.sum += h.sum
      acc.count += h.count
    }
    for (const [series, v] of part.counters) counters.set(series, (counters.get(series) ?? 0) + v)
  }
  return { histograms, counters }
}

export function breakdown (before: PromSnapshot, after: PromSnapshot): ServerBreakdown {
  return breakdownOf(diffSnapshots(before, after))
}

/** The server's view of a load from the difference of its scrapes. */
export function breakdownOf (delta: PromSnapshot): ServerBreakdown {
  const out: Record<string, unknown> = {}
  for (const [key, family] of kFamilies) {
    const h = delta.histograms.get(family)
    out[key] = h === undefined ? null : distribution(h)
  }
  const counters: Record<string, number> = {}
  for (const [series, d] of delta.counters) if (d !== 0) counters[series] = d
  out.counters = counters
  return out as unknown as ServerBreakdown
}

function distribution (delta: PromHistogram): DistributionDelta {
  if (delta.count <= 0) return { count: 0, mean: null, p50: null, p99: null }
  return {
    count: delta.count,
    mean: round4(delta.sum / delta.count),
    p50: bucketQuantile(delta.buckets, 0.5),
    p99: bucketQuantile(delta.buckets, 0.99),
  }
}

/** Prometheus' histogram_quantile: linear inside the bucket; the +Inf bucket answers its lower bound. */
export function bucketQuantile (buckets: ReadonlyArray<readonly [number, number]>, q: number): number | null {
  const total = buckets.length === 0 ? 0 : buckets[buckets.length - 1]![1]
  if (total <= 0) return null
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return round4(prevLe)
      const inBucket = count - prevCount
      return round4(inBucket <= 0 ? le : prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket)
    }
    prevLe = le
    prevCount = count
  }
  return round4(prevLe)
}

function round4 (x: number): number {
  return Math.round(x * 1e4) / 1e4
}
