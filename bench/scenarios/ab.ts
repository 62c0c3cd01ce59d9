/**
 * Before/after for a change: the server built from an earlier checkout (`--baseline <dir>`) and
 * this one, same loads, same run, alternating round by round so that drift on a shared machine
 * falls on both alike. The question every hot-path change must answer: are /predict c64 and c1
 * no worse?
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   npm run bench -- --set ab --baseline /tmp/before
 */

import { kDefaultServer, type ScenarioSet } from './scenario-set.js'

const kRounds = 3

export const abSet: ScenarioSet = {
  name: 'ab',
  description: 'an earlier build (--baseline <dir>) vs this one: /predict c64 and c1, 3 alternating rounds',
  approxSeconds: 150,
  servers: [
    { name: 'before', kind: 'prediction', flags: [], baseline: true, description: 'shipped defaults, the build in --baseline' },
    { ...kDefaultServer, name: 'after', description: 'shipped defaults, this checkout' },
  ],
  async run (ctx) {
    const targets = await ctx.startServers(this.servers)
    for (let round = 1; round <= kRounds; round++) {
      // Alternate which goes first, so neither always runs on a just-warmed machine.
      const order = round % 2 === 1 ? targets : [...targets].reverse()
      for (const t of order) await ctx.load(t, { step: `http-predict-c64-r${round}`, label: `/predict c64 round ${round}`, mode: 'closed', connections: 64, warmupMs: 2000, durationMs: 8000 })
      for (const t of order) await ctx.load(t, { step: `http-predict-c1-r${round}`, label: `/predict c1 round ${round}`, mode: 'closed', connections: 1, warmupMs: 1000, durationMs: 8000 })
    }
  },
}
