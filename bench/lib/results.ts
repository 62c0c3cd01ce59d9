/**
 * The shape of one bench run as written to bench/results/<timestamp>-<set>.json: everything
 * needed to read the figures later without the terminal (machine, code, server configs, each
 * load's merged histogram) and to compare two runs (`--compare`), matched by step id.
 */

import type { LoadResult } from './load-types.js'
import type { FloorReport } from './model-floor.js'
import type { ServerBreakdown } from './server-metrics.js'
import type { LoadSnapshot, MachineInfo } from './system-info.js'
import type { WrkResult } from './wrk.js'

export const kResultSchema = 'ml-prediction-server/bench-result@1'

/** The old Python service's target, marked in every table and chart. */
export const kTargetP95Us = 10_000

export interface ServerRecord {
  readonly name: string
  readonly kind: string
  readonly description: string
  /** The argv the bench started it with, or null when targeted with --url. */
  readonly command: readonly string[] | null
  readonly url: string
  readonly pid: number | null
  /** Resolved settings from the server's own "starting" log line, when it logs one. */
  readonly settings: Record<string, unknown> | null
}

export interface StepResult {
  /** Unique within the run and stable across runs: `${step}@${server}`. The --compare key. */
  readonly id: string
  /** The load's name without the server, shared by the same load on different servers. */
  readonly step: string
  readonly label: string
  readonly server: string
  /** Name of the sweep this step belongs to (a line in the chart), or null. */
  readonly sweep: string | null
  readonly kind: 'load' | 'wrk'
  readonly load: LoadResult | null
  readonly wrk: WrkResult | null
  readonly serverSide: ServerBreakdown | null
  /** Server process CPU over the load, % of one core (all its threads), or null. */
  readonly serverCpuPercent: number | null
  readonly serverRssKb: { readonly before: number | null, readonly after: number | null, readonly samples: readonly number[] } | null
}

export interface CrossCheck {
  readonly benchStep: string
  readonly wrkStep: string
  readonly tolerance: number
  /** How the two were run and compared, in words. */
  readonly method: string
  readonly bench: { readonly throughput: number, readonly p50Us: number | null }
  readonly wrk: { readonly throughput: number, readonly p50Us: number | null }
  /** bench / wrk. */
  readonly throughputRatio: number | null
  readonly p50Ratio: number | null
  readonly agrees: boolean
  /** Each round's figures: the spread behind the verdict. */
  readonly rounds: ReadonlyArray<{ readonly benchThroughput: number, readonly benchP50Us: number | null, readonly wrkThroughput: number, readonly wrkP50Us: number | null }>
}

export interface BenchRun {
  readonly schema: typeof kResultSchema
  readonly set: string
  readonly description: string
  readonly command: readonly string[]
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationS: number
  readonly machine: MachineInfo
  readonly loadBefore: LoadSnapshot
  readonly loadAfter: LoadSnapshot
  readonly pinning: string
  readonly options: Readonly<Record<string, unknown>>
  readonly servers: readonly ServerRecord[]
  readonly steps: readonly StepResult[]
  readonly floor: FloorReport | null
  readonly crossCheck: CrossCheck | null
  readonly notes: readonly string[]
  /** A set's own summary (e.g. phase2: per-member row shares, memory per worker): its table text and its data. */
  readonly extra?: SetExtra | null
}

export interface SetExtra {
  /** Printed after the main report, also by --report. */
  readonly report: string
  readonly data: unknown
}

/** Sum of everything that was not a 2xx answer: non-2xx, socket errors, timeouts, unsent. */
export function failedCount (r: LoadResult): number {
  let n = r.counts.timeouts + r.counts.unsent
  for (const v of Object.values(r.counts.non2xx)) n += v
  for (const v of Object.values(r.counts.errors)) n += v
  return n
}

/** "503x12, ECONNRESET x1, timeouts 3, unsent 40", or "" when clean. */
export function failureDetail (r: LoadResult): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(r.counts.non2xx)) parts.push(`HTTP ${k} x${v}`)
  for (const [k, v] of Object.entries(r.counts.errors)) parts.push(`${k} x${v}`)
  if (r.counts.timeouts > 0) parts.push(`timeouts ${r.counts.timeouts}`)
  if (r.counts.unsent > 0) parts.push(`unsent ${r.counts.unsent}`)
  return parts.join(', ')
}
