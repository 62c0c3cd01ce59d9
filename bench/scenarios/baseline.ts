/**
 * Issue 3's transport baseline: a bare uWebSockets.js handler that parses the JSON body and
 * answers a constant (bench/baseline/bare-uws-server.ts, its own process) against the prediction
 * server, same loads, same run. The target: on one connection, the server's p50 at most 100 µs
 * above the bare handler's. A third server polls in its worker (worker_spin_us 500): what the two
 * thread wake-ups per request cost, and what a busy worker core costs the others at 64 connections.
 */

import { kDefaultServer, type ScenarioSet } from './scenario-set.js'

export const baselineSet: ScenarioSet = {
  name: 'baseline',
  description: 'bare uWebSockets.js JSON handler vs the prediction server, same loads, same run',
  approxSeconds: 150,
  servers: [
    { name: 'bare-uws', kind: 'bare', flags: [], description: 'bare uWS handler: parse JSON, answer a constant' },
    kDefaultServer,
    { name: 'spin-500', kind: 'prediction', flags: ['--worker-spin-us', '500'], description: 'shipped defaults with worker_spin_us 500 (the worker polls instead of sleeping)' },
  ],
  async run (ctx) {
    const targets = await ctx.startServers(this.servers)
    for (const t of targets) await ctx.load(t, { step: 'http-predict-c1', label: '/predict c1', mode: 'closed', connections: 1, warmupMs: 2000, durationMs: 10_000 })
    for (const t of targets) await ctx.load(t, { step: 'http-predict-open-100', label: '/predict 100/s', mode: 'open', rate: 100, connections: 4, warmupMs: 1000, durationMs: 10_000 })
    for (const t of targets) await ctx.load(t, { step: 'http-predict-c64', label: '/predict max c64', mode: 'closed', connections: 64, warmupMs: 2000, durationMs: 10_000 })
  },
}
