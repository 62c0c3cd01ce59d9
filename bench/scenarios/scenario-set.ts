/**
 * A named scenario set: the servers it needs (each a named flag set) and what it runs on them.
 * `npm run bench` runs "default"; the others are named (`npm run bench -- --set batching`, or the
 * `bench:*` scripts) because each costs minutes and answers one question of issue 3 or 4.
 */

import type { BenchContext } from '../lib/bench-context.js'
import type { ServerSpec } from '../lib/server-process.js'

export interface ScenarioSet {
  readonly name: string
  readonly description: string
  /** Rough wall time at --scale 1, for --help. */
  readonly approxSeconds: number
  readonly servers: readonly ServerSpec[]
  run (ctx: BenchContext): Promise<void>
}

/** Sweep points as fractions of a reference throughput, labelled by percentage (stable ids). */
export function fractionsOf (reference: number, fractions: readonly number[]): Array<{ id: string, rate: number }> {
  return fractions.map((f) => ({ id: `${Math.round(f * 100)}pct`, rate: Math.max(1, roundRate(reference * f)) }))
}

/** Two significant figures: rates read as "4,700/s", not "4,713/s". */
export function roundRate (rate: number): number {
  if (rate < 10) return Math.round(rate)
  const mag = 10 ** (Math.floor(Math.log10(rate)) - 1)
  return Math.round(rate / mag) * mag
}

export const kDefaultServer: ServerSpec = {
  name: 'default',
  kind: 'prediction',
  flags: [],
  description: 'shipped defaults (config/default.json)',
}
