/**
 * Issue 3's thread budget: 1, 2 and 4 inference workers on this machine, started side by side
 * and loaded alternately; sweeps at the same absolute rates (fractions of the best maximum), so
 * oversubscription shows where it shows first, in the tail.
 */

import { fractionsOf, type ScenarioSet } from './scenario-set.js'

export const workersSet: ScenarioSet = {
  name: 'workers',
  description: 'inference workers 1 vs 2 vs 4, same loads, same run',
  approxSeconds: 200,
  servers: [1, 2, 4].map((n) => ({
    name: `workers-${n}`, kind: 'prediction' as const, flags: ['--workers', String(n)], description: `${n} inference worker${n > 1 ? 's' : ''}`,
  })),
  async run (ctx) {
    const targets = await ctx.startServers(this.servers)
    let best = 0
    for (const t of targets) {
      const s = await ctx.load(t, { step: 'http-predict-c64', label: '/predict max c64', mode: 'closed', connections: 64, warmupMs: 2000, durationMs: 10_000 })
      best = Math.max(best, s.load!.throughput)
    }
    for (const t of targets) await ctx.load(t, { step: 'http-predict-c1', label: '/predict c1', mode: 'closed', connections: 1, warmupMs: 1000, durationMs: 6000 })
    const points = fractionsOf(best, [0.25, 0.5, 0.75, 1.0])
    for (const t of targets) await ctx.sweep(t, 'http-predict-sweep', points, { connections: 64, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000 })
  },
}
