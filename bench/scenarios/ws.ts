/**
 * Issue 4's targets, side by side with HTTP on the same server in the same run: one connection of
 * pipelined single-request frames (FlatBuffers and JSON), batch frames, 10,000 requests/s on one
 * connection measured from the intended send time, and latency-vs-throughput sweeps of /ws
 * FlatBuffers (one connection) and HTTP (64 connections) for the chart.
 */

import { fractionsOf, kDefaultServer, type ScenarioSet } from './scenario-set.js'

export const wsSet: ScenarioSet = {
  name: 'ws',
  description: '/ws FlatBuffers vs JSON vs HTTP: pipelined max, batch frames, 10k/s on one connection, sweeps',
  approxSeconds: 150,
  servers: [kDefaultServer],
  async run (ctx) {
    const [server] = await ctx.startServers(this.servers)
    const s = server!
    const fb = await ctx.load(s, { step: 'ws-fb-c1-d64', label: '/ws FlatBuffers max c1', transport: 'ws-binary', mode: 'closed', connections: 1, pipeline: 64, warmupMs: 2000, durationMs: 8000 })
    await ctx.load(s, { step: 'ws-json-c1-d64', label: '/ws JSON max c1', transport: 'ws-json', mode: 'closed', connections: 1, pipeline: 64, warmupMs: 2000, durationMs: 8000 })
    const http = await ctx.load(s, { step: 'http-predict-c64', label: '/predict max c64', mode: 'closed', connections: 64, warmupMs: 2000, durationMs: 8000 })
    await ctx.load(s, { step: 'ws-fb-batch32-c1-d8', label: '/ws FlatBuffers batch x32 c1', transport: 'ws-binary', mode: 'closed', connections: 1, pipeline: 8, rows: 32, warmupMs: 1000, durationMs: 6000 })
    await ctx.load(s, { step: 'ws-json-batch32-c1-d8', label: '/ws JSON batch x32 c1', transport: 'ws-json', mode: 'closed', connections: 1, pipeline: 8, rows: 32, warmupMs: 1000, durationMs: 6000 })
    for (const transport of ['ws-binary', 'ws-json'] as const) {
      await ctx.load(s, {
        step: `${transport === 'ws-binary' ? 'ws-fb' : 'ws-json'}-open-10k`, label: `/ws ${transport === 'ws-binary' ? 'FlatBuffers' : 'JSON'} 10k/s c1`,
        transport, mode: 'open', rate: 10_000, connections: 1, pipeline: 256, warmupMs: 1000, durationMs: 8000, timeoutMs: 2000,
      })
    }
    await ctx.sweep(s, 'ws-fb-sweep', fractionsOf(fb.load!.throughput, [0.1, 0.25, 0.5, 0.75, 0.9, 1.1]), {
      transport: 'ws-binary', connections: 1, pipeline: 1024, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000,
    })
    await ctx.sweep(s, 'http-predict-sweep', fractionsOf(http.load!.throughput, [0.1, 0.25, 0.5, 0.75, 0.9, 1.1]), {
      connections: 64, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000,
    })
  },
}
