/**
 * `npm run bench`, about two minutes on the 2-core machine:
 *
 *   model-only floor         in-process session.run, batch 1 / 8 / 64              ~5 s
 *   /predict open 100/s      the bot's kind of load: latency at a low rate          12 s
 *   /predict closed c64      maximum throughput, 64 keep-alive connections,     3 x ~5 s
 *   wrk -t1 -c64 -d4s        interleaved with it (alternating order): the cross-check  3 x 4 s
 *   /predict closed c1       one connection, one request at a time                   6 s
 *   /predict open sweep      10% .. 200% of the c64 max until the rate is not kept   <= 45 s
 *   /predict/batch c16 x32   the batch route, 32 snapshots per request               5 s
 *   /ws FlatBuffers, JSON    one connection, 64 pipelined single-request frames   2 x 5 s
 *   /ws FlatBuffers batch    one connection, 8 pipelined frames of 32 snapshots      5 s
 *   /ws FlatBuffers 10k/s    open loop on one connection (issue 4's latency target)  5 s
 */

import { fractionsOf, kDefaultServer, type ScenarioSet } from './scenario-set.js'

export const kSweepFractions = [0.1, 0.25, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0] as const

export const defaultSet: ScenarioSet = {
  name: 'default',
  description: 'HTTP: latency at 100 req/s, max throughput (64 and 1 connections), latency-vs-throughput sweep to saturation, ' +
    '/predict/batch; /ws: FlatBuffers and JSON pipelined, batch frames, 10k/s open loop; model-only floor; wrk cross-check',
  approxSeconds: 120,
  servers: [kDefaultServer],
  async run (ctx) {
    await ctx.modelFloor([1, 8, 64], 1500)
    const [server] = await ctx.startServers(this.servers)
    await ctx.load(server!, {
      step: 'http-predict-open-100', label: '/predict 100/s', mode: 'open', rate: 100, connections: 4, warmupMs: 2000, durationMs: 10_000,
    })
    // Maximum throughput, measured in three rounds interleaved with wrk's (the cross-check).
    const max = await ctx.closedLoadWithWrk(server!, {
      step: 'http-predict-c64', label: '/predict max c64', mode: 'closed', connections: 64, warmupMs: 500, durationMs: 4000, rounds: 3,
    })
    await ctx.load(server!, {
      step: 'http-predict-c1', label: '/predict c1', mode: 'closed', connections: 1, warmupMs: 1000, durationMs: 5000,
    })
    await ctx.sweep(server!, 'http-predict-sweep', fractionsOf(max.load!.throughput, kSweepFractions), {
      connections: 64, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000,
    })
    await ctx.load(server!, {
      step: 'http-batch32-c16', label: '/predict/batch x32 c16', mode: 'closed', connections: 16, path: '/predict/batch', rows: 32,
      warmupMs: 1000, durationMs: 4000,
    })
    await ctx.load(server!, {
      step: 'ws-fb-c1-d64', label: '/ws FlatBuffers max c1', transport: 'ws-binary', mode: 'closed', connections: 1, pipeline: 64,
      warmupMs: 1000, durationMs: 4000,
    })
    await ctx.load(server!, {
      step: 'ws-json-c1-d64', label: '/ws JSON max c1', transport: 'ws-json', mode: 'closed', connections: 1, pipeline: 64,
      warmupMs: 1000, durationMs: 4000,
    })
    await ctx.load(server!, {
      step: 'ws-fb-batch32-c1-d8', label: '/ws FlatBuffers batch x32 c1', transport: 'ws-binary', mode: 'closed', connections: 1,
      pipeline: 8, rows: 32, warmupMs: 1000, durationMs: 4000,
    })
    await ctx.load(server!, {
      step: 'ws-fb-open-10k', label: '/ws FlatBuffers 10k/s c1', transport: 'ws-binary', mode: 'open', rate: 10_000, connections: 1,
      pipeline: 256, warmupMs: 1000, durationMs: 4000, timeoutMs: 2000,
    })
  },
}
