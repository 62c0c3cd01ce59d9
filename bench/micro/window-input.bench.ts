/**
 * Per-request cost of a windowed input (src/features/window-input.ts) as serving would pay it:
 * read the last N closes of the symbol and of BTC from its SymbolState (recentCloses), then write
 * the GAF tensor [C, N, N] into a reused Float32Array. Also the writer alone. Repeated runs; prints
 * each run's ns per request and the median. Single thread, no allocation in the timed loop.
 *
 *   npx tsx bench/micro/window-input.bench.ts [--window 32] [--channels gasf_close,gadf_close,gasf_btc] [--iterations 200000] [--runs 5]
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { warmSymbolState } from './warm-symbol-state.js'
import { parseInputSpec, WindowInputWriter, type WindowedInputSpec } from '../../src/features/window-input.js'

const { values: args } = parseArgs({
  options: {
    window: { type: 'string', default: '32' },
    channels: { type: 'string', default: 'gasf_close,gadf_close,gasf_btc' },
    iterations: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '5' },
  },
})
const spec = parseInputSpec({ kind: 'gaf', window: Number(args.window), channels: args.channels!.split(',') }) as WindowedInputSpec
const kIterations = Number(args.iterations)
const kRuns = Number(args.runs)
const kBarMs = 60_000

const state = warmSymbolState(kBarMs)

const writer = new WindowInputWriter(spec)
const closes = new Float64Array(spec.window)
const btcCloses = new Float64Array(spec.window)
const out = new Float32Array(writer.rowLength)
let sink = 0

/**
 * ns per request, by this thread's CPU time (process.cpuUsage: user + system) rather than wall
 * time: the 2 cores are shared with other jobs, and wall time would count the time this process
 * spent waiting for a core. Wall time is printed too.
 */
function timeLoop (withState: boolean): { cpu: number, wall: number } {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < kIterations; i++) {
    if (withState) state.recentCloses(closes, btcCloses)
    writer.write(closes, btcCloses, out, 0)
    sink += out[i % out.length]!
  }
  const wall = ((performance.now() - t0) * 1e6) / kIterations
  const c = process.cpuUsage(c0)
  return { cpu: ((c.user + c.system) * 1e3) / kIterations, wall }
}

state.recentCloses(closes, btcCloses)
timeLoop(true) // warm-up: JIT
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const full: number[] = []
const writeOnly: number[] = []
for (let r = 0; r < kRuns; r++) {
  const a = timeLoop(true)
  const b = timeLoop(false)
  full.push(a.cpu)
  writeOnly.push(b.cpu)
  process.stdout.write(`run ${r + 1}: recentCloses + GAF ${a.cpu.toFixed(0)} ns CPU (${a.wall.toFixed(0)} wall), GAF alone ${b.cpu.toFixed(0)} ns CPU (${b.wall.toFixed(0)} wall)\n`)
}
process.stdout.write(`window ${spec.window}, channels ${spec.channels.join(',')} (${writer.rowLength} floats), ${kIterations} requests x ${kRuns} runs, node ${process.version}\n` +
  `median CPU per request: recentCloses + GAF ${(median(full) / 1000).toFixed(2)} us, GAF alone ${(median(writeOnly) / 1000).toFixed(2)} us (sink ${sink > 0 ? '+' : '-'})\n`)
