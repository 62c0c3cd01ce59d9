/**
 * Issue 3's "batching on versus off": the shipped server against `--max-batch-size 1`, started
 * side by side and loaded alternately with the same loads (64 connections for throughput, one
 * connection for latency, 100/s, and an open-loop sweep at the same absolute rates for both,
 * taken from the batching-on maximum), so drift of a shared machine hits both alike.
 */

import { fractionsOf, kDefaultServer, type ScenarioSet } from './scenario-set.js'
import type { StepResult } from '../lib/results.js'

export const batchingSet: ScenarioSet = {
  name: 'batching',
  description: 'dynamic batching on (max_batch_size 64) vs off (max_batch_size 1), same loads, same run',
  approxSeconds: 150,
  servers: [
    { ...kDefaultServer, name: 'batching-on', description: 'shipped defaults, max_batch_size 64' },
    { name: 'batching-off', kind: 'prediction', flags: ['--max-batch-size', '1'], description: 'max_batch_size 1: one row per session.run' },
  ],
  async run (ctx) {
    const targets = await ctx.startServers(this.servers)
    const c64: StepResult[] = []
    for (const t of targets) c64.push(await ctx.load(t, { step: 'http-predict-c64', label: '/predict max c64', mode: 'closed', connections: 64, warmupMs: 2000, durationMs: 10_000 }))
    for (const t of targets) await ctx.load(t, { step: 'http-predict-c1', label: '/predict c1', mode: 'closed', connections: 1, warmupMs: 1000, durationMs: 8000 })
    for (const t of targets) await ctx.load(t, { step: 'http-predict-open-100', label: '/predict 100/s', mode: 'open', rate: 100, connections: 4, warmupMs: 1000, durationMs: 8000 })
    const points = fractionsOf(c64[0]!.load!.throughput, [0.25, 0.5, 0.75, 1.0, 1.2])
    for (const t of targets) await ctx.sweep(t, 'http-predict-sweep', points, { connections: 64, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000 })
  },
}
