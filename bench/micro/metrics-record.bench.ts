/**
 * Cost of the metrics hot path per request: recordRequest + recordPrediction + recordQueueWait,
 * against prom-client doing the same work (three histogram observes and a counter increment) in
 * the same run, as the baseline. Also counts GCs during each timed loop: zero scavenges over
 * millions of calls is the evidence that recording allocates nothing. Then the read side:
 * one toJSON() and one toPrometheus() after a million records, and the cost of one rotation of
 * the recent window (done by a timer, so it never lands on a request).
 *
 *   npx tsx bench/micro/metrics-record.bench.ts [--seconds 2]
 *
 * Bounded by time (default ~2 s in all), not by iteration count.
 */

import os from 'node:os'
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Counter, Histogram, Registry } from 'prom-client'
import { ServiceMetrics, kConfidenceBuckets, kLatencyBucketsMs } from '../../src/metrics/service-metrics.js'

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } })
const kBudgetMs = Number(args.seconds) * 1000
const kChunk = 100_000

// Realistic inputs, varied so nothing is constant-folded: 50 µs .. ~5 ms, skewed low.
const kInputs = 4096
const serverUs = new Float64Array(kInputs)
const waitUs = new Float64Array(kInputs)
const probability = new Float64Array(kInputs)
let seed = 12345
function random (): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
  return seed / 4294967296
}
for (let i = 0; i < kInputs; i++) {
  serverUs[i] = 50 + Math.floor(Math.exp(random() * Math.log(5000)))
  waitUs[i] = Math.floor(random() * random() * 500)
  probability[i] = random()
}

let gcCount = 0
const gcObserver = new PerformanceObserver((list) => { gcCount += list.getEntries().length })
gcObserver.observe({ entryTypes: ['gc'] })

async function settle (): Promise<void> {
  // GC entries are delivered asynchronously; let them arrive before reading the count.
  await new Promise((resolve) => setTimeout(resolve, 20))
}

interface Result { nsPerOp: number, ops: number, gcs: number }

async function measure (budgetMs: number, step: (from: number, count: number) => void): Promise<Result> {
  // Warm-up: a fifth of the budget, so the JIT has optimised the path before timing.
  const warmEnd = performance.now() + budgetMs / 5
  let i = 0
  while (performance.now() < warmEnd) { step(i, kChunk); i += kChunk }
  await settle()
  const gcBefore = gcCount
  const end = performance.now() + (budgetMs * 4) / 5
  let ops = 0
  const t0 = process.hrtime.bigint()
  while (performance.now() < end) { step(i, kChunk); i += kChunk; ops += kChunk }
  const ns = Number(process.hrtime.bigint() - t0)
  await settle()
  return { nsPerOp: ns / ops, ops, gcs: gcCount - gcBefore }
}

const ours = new ServiceMetrics()
const oursResult = await measure(kBudgetMs * 0.45, (from, count) => {
  for (let k = from; k < from + count; k++) {
    const j = k & (kInputs - 1)
    ours.recordRequest(serverUs[j]!)
    ours.recordPrediction(probability[j]!)
    ours.recordQueueWait(waitUs[j]!)
  }
})

const registry = new Registry()
const pcLatency = new Histogram({ name: 'l_ms', help: 'l', buckets: [...kLatencyBucketsMs], registers: [registry] })
const pcWait = new Histogram({ name: 'w_ms', help: 'w', buckets: [...kLatencyBucketsMs], registers: [registry] })
const pcConfidence = new Histogram({ name: 'c', help: 'c', buckets: [...kConfidenceBuckets], registers: [registry] })
const pcCount = new Counter({ name: 'n', help: 'n', registers: [registry] })
const promResult = await measure(kBudgetMs * 0.45, (from, count) => {
  for (let k = from; k < from + count; k++) {
    const j = k & (kInputs - 1)
    const p = probability[j]!
    pcLatency.observe(serverUs[j]! / 1000)
    pcCount.inc()
    pcConfidence.observe(p >= 0.5 ? p : 1 - p)
    pcWait.observe(waitUs[j]! / 1000)
  }
})
gcObserver.disconnect()

// Read side, on a fresh object holding a million requests.
const read = new ServiceMetrics()
for (let k = 0; k < 1_000_000; k++) {
  const j = k & (kInputs - 1)
  read.recordRequest(serverUs[j]!)
  read.recordPrediction(probability[j]!)
  read.recordQueueWait(waitUs[j]!)
}
const kRenders = 20
let t0 = performance.now()
for (let r = 0; r < kRenders; r++) read.toJSON()
const jsonMs = (performance.now() - t0) / kRenders
t0 = performance.now()
let bytes = 0
for (let r = 0; r < kRenders; r++) bytes = read.toPrometheus().length
const promMs = (performance.now() - t0) / kRenders

// Window rotation (the timer's work, never on the request path): fold a slot holding 100 k
// requests into the lifetime and reset it, for all four windowed distributions.
let clockMs = 0
const rotating = new ServiceMetrics({ now: () => clockMs })
const kRotations = 20
let rotateMs = 0
for (let r = 0; r < kRotations; r++) {
  for (let k = 0; k < 100_000; k++) {
    const j = k & (kInputs - 1)
    rotating.recordRequest(serverUs[j]!)
    rotating.recordQueueWait(waitUs[j]!)
    if ((k & 15) === 0) rotating.recordBatch(1 + (j & 63), serverUs[j]!)
  }
  clockMs += 70_000 // past a whole window: every slot is folded, the one with data included
  const start = performance.now()
  rotating.rotate()
  rotateMs += performance.now() - start
}
rotating.close()
ours.close()
read.close()

const cpus = os.cpus()
console.log(`# ${os.type()} ${os.release()} ${os.arch()}, ${cpus[0]?.model ?? 'unknown CPU'} x${cpus.length}, ` +
  `${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`)
console.log('per request = recordRequest + recordPrediction + recordQueueWait')
console.log(`ServiceMetrics  ${oursResult.nsPerOp.toFixed(1).padStart(7)} ns/request  ` +
  `(${(oursResult.ops / 1e6).toFixed(1)} M requests, ${oursResult.gcs} GCs while timed)`)
console.log(`prom-client     ${promResult.nsPerOp.toFixed(1).padStart(7)} ns/request  ` +
  `(${(promResult.ops / 1e6).toFixed(1)} M requests, ${promResult.gcs} GCs while timed; baseline)`)
console.log(`read side after 1 M requests: toJSON ${jsonMs.toFixed(3)} ms, toPrometheus ${promMs.toFixed(3)} ms (${bytes} bytes)`)
console.log(`window rotation (timer, off the request path): ${(rotateMs / kRotations).toFixed(3)} ms per full-window rotation`)
