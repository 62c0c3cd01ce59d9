/**
 * Where a windowed member's transform runs (issue 14), measured as the event loop would pay it per
 * request: (a) today's serving path, `SymbolState.writeWindow` into the batch row's float64 window
 * block (src/features/row-layout.ts), the GAF then built in the member's worker; against (b) the
 * alternative, the GAF tensor [C, N, N] built on the event loop into a float32 row of the batch
 * buffer (recentCloses + WindowInputWriter.write), which the slot copy then moves as 12 KB instead
 * of 1 KB (the copy, c, is timed too). CPU time per request; repeated runs, medians printed.
 *
 *   npx tsx bench/micro/window-placement.bench.ts [--iterations 200000] [--runs 5]
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { kRowDoubles, kWindowCloses, kWindowFloats, kWindowOffset } from '../../src/features/row-layout.js'
import { warmSymbolState } from './warm-symbol-state.js'
import { WindowInputWriter } from '../../src/features/window-input.js'

const { values: args } = parseArgs({ options: { iterations: { type: 'string', default: '200000' }, runs: { type: 'string', default: '5' } } })
const kIterations = Number(args.iterations)
const kRuns = Number(args.runs)
const kBarMs = 60_000
const kRowsPerBatch = 16

const state = warmSymbolState(kBarMs)

const writer = new WindowInputWriter({ kind: 'gaf', window: 32, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] })
// (a) the batch buffer as serving lays it out, and a member slot's packed window blocks
const batch = new ArrayBuffer(kRowsPerBatch * kRowDoubles * 8)
const batchDoubles = new Float64Array(batch)
const batchWords = new Int32Array(batch)
const slotWords = new Int32Array(kRowsPerBatch * kWindowFloats)
// (b) the alternative: GAF rows of C*N*N floats in the batch buffer, copied whole into a slot
const gafBatch = new Float32Array(kRowsPerBatch * writer.rowLength)
const gafSlot = new Float32Array(kRowsPerBatch * writer.rowLength)
const closes = new Float64Array(32)
const btcCloses = new Float64Array(32)
let sink = 0

function cpu (loop: () => void): number {
  const c0 = process.cpuUsage()
  loop()
  const c = process.cpuUsage(c0)
  return ((c.user + c.system) * 1e3) / kIterations
}

const serving = (): void => {
  for (let i = 0; i < kIterations; i++) {
    const r = i % kRowsPerBatch
    state.writeWindow(batchDoubles, r * kRowDoubles + kWindowOffset / 2, kWindowCloses)
    if (r === kRowsPerBatch - 1) {
      // the member pool's strided copy of the batch's window blocks into its slot
      for (let k = 0; k < kRowsPerBatch; k++) {
        const src = k * kRowDoubles * 2 + kWindowOffset
        const dst = k * kWindowFloats
        for (let w = 0; w < kWindowFloats; w++) slotWords[dst + w] = batchWords[src + w]!
      }
    }
  }
  sink += slotWords[7]!
}

const onLoop = (): void => {
  for (let i = 0; i < kIterations; i++) {
    const r = i % kRowsPerBatch
    state.recentCloses(closes, btcCloses)
    writer.write(closes, btcCloses, gafBatch, r * writer.rowLength)
    if (r === kRowsPerBatch - 1) gafSlot.set(gafBatch)
  }
  sink += gafSlot[7]!
}

serving(); onLoop() // JIT warm-up
const a: number[] = []
const b: number[] = []
for (let run = 0; run < kRuns; run++) {
  const t0 = performance.now()
  a.push(cpu(serving))
  b.push(cpu(onLoop))
  process.stdout.write(`run ${run + 1}: window block + slot copy ${a.at(-1)!.toFixed(0)} ns; GAF on the event loop + slot copy ${b.at(-1)!.toFixed(0)} ns (${(performance.now() - t0).toFixed(0)} ms)\n`)
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
process.stdout.write(`median CPU per request on the event loop: serving (window block, GAF in the worker) ${median(a).toFixed(0)} ns; ` +
  `GAF on the event loop ${median(b).toFixed(0)} ns (x${(median(b) / median(a)).toFixed(1)})\n`)
if (sink === 42) process.stdout.write('\n')
