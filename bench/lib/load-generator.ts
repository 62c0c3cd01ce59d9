/**
 * Runs one load (LoadSpec) against one address: starts the generator threads, starts them
 * together once every connection is open, relays progress, and merges what they send back.
 *
 * Merging is exact (bench/lib/histogram.ts): per-thread hdr histograms add bucket by bucket, and
 * counters add. The parent also measures the generator's own CPU (process.cpuUsage covers every
 * thread of this process) so each result says what the load cost to produce.
 */

import { extname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { decodeHistogram, createHistogram, encodeHistogram, summarize } from './histogram.js'
import {
  addCounts, emptyCounts, type GeneratorWorkerData, type LoadResult, type LoadSpec, type TargetAddress, type ThreadResult,
  type WorkerToParent,
} from './load-types.js'
import { requestTemplate } from './request-bodies.js'

// Same extension as this module: .ts under tsx (npm run bench, tests), .js from dist/.
const kWorkerFile = fileURLToPath(new URL(`./generator-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
const kTsShim = fileURLToPath(new URL('./ts-worker-shim.cjs', import.meta.url))

/** Kept-rate tolerance: below 95% of the asked rate the result is flagged (wrk2 reports the same). */
const kKeptRateFraction = 0.95
const kReadyTimeoutMs = 15_000

export interface LoadProgress {
  readonly sent: number
  readonly ok: number
  readonly failed: number
  readonly elapsedMs: number
  readonly totalMs: number
}

export interface RunLoadOptions {
  readonly onProgress?: (progress: LoadProgress) => void
  readonly progressIntervalMs?: number
}

/** Checks a spec; returns the problem naming the field (autocannon `lib/validate.js` style), or null. */
export function validateLoadSpec (spec: LoadSpec): Error | null {
  const positiveInt = (name: keyof LoadSpec, value: number): Error | null =>
    Number.isInteger(value) && value > 0 ? null : new Error(`load.${name} must be a positive integer, got ${value}`)
  const problem = positiveInt('connections', spec.connections) ?? positiveInt('threads', spec.threads) ??
    positiveInt('rowsPerRequest', spec.rowsPerRequest) ?? positiveInt('pipeline', spec.pipeline)
  if (problem !== null) return problem
  if (spec.transport === 'http' && spec.pipeline !== 1) return new Error(`load.pipeline must be 1 for http (pipelining is off), got ${spec.pipeline}`)
  if (!(spec.durationMs > 0)) return new Error(`load.durationMs must be > 0, got ${spec.durationMs}`)
  if (!(spec.warmupMs >= 0)) return new Error(`load.warmupMs must be >= 0, got ${spec.warmupMs}`)
  if (!(spec.timeoutMs > 0)) return new Error(`load.timeoutMs must be > 0, got ${spec.timeoutMs}`)
  if (spec.mode === 'open' && !(spec.rate !== null && spec.rate > 0)) return new Error(`load.rate must be > 0 in open mode, got ${spec.rate}`)
  if (spec.maxRequests !== null && !(Number.isInteger(spec.maxRequests) && spec.maxRequests > 0)) {
    return new Error(`load.maxRequests must be a positive integer or null, got ${spec.maxRequests}`)
  }
  return null
}

export async function runLoad (target: TargetAddress, spec: LoadSpec, options: RunLoadOptions = {}): Promise<LoadResult> {
  const invalid = validateLoadSpec(spec)
  if (invalid !== null) throw invalid
  const threads = Math.min(spec.threads, spec.connections)
  const template = requestTemplate(spec.transport, target.host, target.port, spec.path, spec.body)
  const progressIntervalMs = options.progressIntervalMs ?? 250
  const rate = spec.rate ?? 0
  const totalMs = spec.warmupMs + spec.durationMs

  const workers: Worker[] = []
  const progress: Array<{ sent: number, ok: number, failed: number }> = []
  for (let i = 0; i < threads; i++) {
    const connections = Math.floor(spec.connections / threads) + (i < spec.connections % threads ? 1 : 0)
    const workerData: GeneratorWorkerData = {
      host: target.host,
      port: target.port,
      template,
      mode: spec.mode,
      connections,
      pipeline: spec.pipeline,
      rate: rate / threads,
      // Threads' schedules interleave: thread i's first request is due i/rate after thread 0's.
      phaseMs: spec.mode === 'open' ? (i * 1000) / rate : 0,
      warmupMs: spec.warmupMs,
      durationMs: spec.durationMs,
      timeoutMs: spec.timeoutMs,
      maxRequests: spec.maxRequests === null ? null : Math.ceil(spec.maxRequests / threads),
      progressIntervalMs,
    }
    workers.push(startWorker(workerData))
    progress.push({ sent: 0, ok: 0, failed: 0 })
  }

  const startedAt = new Date().toISOString()
  let cpuStart = process.cpuUsage()
  let wallStart = performance.now()
  const results: ThreadResult[] = new Array<ThreadResult>(threads)
  try {
    await new Promise<void>((resolve, reject) => {
      let ready = 0
      let done = 0
      let timer = setTimeout(() => { reject(new Error(`generator threads not connected after ${kReadyTimeoutMs} ms`)) }, kReadyTimeoutMs)
      const fail = (err: Error): void => { clearTimeout(timer); reject(err) }
      workers.forEach((worker, i) => {
        worker.on('error', fail)
        worker.on('exit', (code) => {
          if (results[i] === undefined) fail(new Error(`generator thread ${i} exited with code ${code} before reporting`))
        })
        worker.on('message', (message: WorkerToParent) => {
          switch (message.type) {
            case 'ready':
              if (++ready === threads) {
                clearTimeout(timer)
                // Bounded: warm-up + window + an open loop's late sends (<= 1 s) + drain (timeoutMs)
                // + slack for thread start and exit.
                timer = setTimeout(() => { reject(new Error('generator threads did not finish in time')) },
                  totalMs + Math.min(1000, spec.timeoutMs) + spec.timeoutMs + 10_000)
                cpuStart = process.cpuUsage()
                wallStart = performance.now()
                for (const w of workers) w.postMessage({ type: 'start' })
              }
              break
            case 'progress': {
              progress[i] = { sent: message.sent, ok: message.ok, failed: message.failed }
              if (options.onProgress !== undefined) {
                let sent = 0; let ok = 0; let failed = 0
                for (const p of progress) { sent += p.sent; ok += p.ok; failed += p.failed }
                options.onProgress({ sent, ok, failed, elapsedMs: performance.now() - wallStart, totalMs })
              }
              break
            }
            case 'done':
              results[i] = message.result
              if (++done === threads) { clearTimeout(timer); resolve() }
              break
            case 'failed':
              fail(new Error(`generator thread ${i} failed: ${message.message}`))
              break
          }
        })
      })
    })
  } finally {
    // Threads exit by themselves after 'done'; terminate() covers the failure paths.
    await Promise.all(workers.map((w) => w.terminate()))
  }
  const cpu = process.cpuUsage(cpuStart)
  const wallMs = performance.now() - wallStart
  const scheme = spec.transport === 'http' ? 'http' : 'ws'
  const path = template.kind === 'ws' ? template.ws.path : spec.path
  return mergeThreadResults(spec, `${scheme}://${target.host}:${target.port}${path}`, startedAt, results, {
    cpuUs: cpu.user + cpu.system, wallMs,
  })
}

/** From source, a .ts entry goes through a CJS shim (bench/lib/ts-worker-shim.cjs says why). */
function startWorker (workerData: GeneratorWorkerData): Worker {
  if (kWorkerFile.endsWith('.ts')) return new Worker(kTsShim, { workerData, argv: [kWorkerFile] })
  return new Worker(kWorkerFile, { workerData })
}

/** Sums the threads' counters and histograms; exported for the merge test. */
export function mergeThreadResults (
  spec: LoadSpec, target: string, startedAt: string, results: readonly ThreadResult[],
  usage: { readonly cpuUs: number, readonly wallMs: number },
): LoadResult {
  const counts = emptyCounts()
  const latency = createHistogram()
  const sendLag = spec.mode === 'open' ? createHistogram() : null
  let windowMs = 0
  let answerSpanMs = 0
  let maxElu = 0
  let queuedForConnection = 0
  const perThread: Array<{ ok: number, sent: number, recorded: number }> = []
  for (const r of results) {
    const c = r.counts
    addCounts(counts, c)
    const threadHistogram = decodeHistogram(r.latency)
    latency.add(threadHistogram)
    perThread.push({ ok: c.ok, sent: c.sent, recorded: threadHistogram.totalCount })
    if (sendLag !== null && r.sendLag !== null) sendLag.add(decodeHistogram(r.sendLag))
    windowMs = Math.max(windowMs, r.windowMs)
    answerSpanMs = Math.max(answerSpanMs, r.answerSpanMs)
    maxElu = Math.max(maxElu, r.elu)
    queuedForConnection += r.queuedForConnection
  }
  const seconds = windowMs / 1000
  const throughput = answerSpanMs > 0 ? counts.ok / (answerSpanMs / 1000) : 0
  // Sent inside the window, not counting the backlog drained after it: a server that fell behind
  // shows here as a rate below the asked one, as wrk2 reports it.
  const achievedRate = spec.mode === 'open' && seconds > 0 ? counts.sentInWindow / seconds : null
  const keptRate = spec.mode === 'open' && spec.rate !== null && achievedRate !== null
    ? counts.unsent === 0 && achievedRate >= spec.rate * kKeptRateFraction
    : null
  let requestsTotal = 0
  for (const r of results) requestsTotal += r.requestsTotal
  return {
    spec,
    target,
    startedAt,
    counts,
    latencyUs: summarize(latency),
    histogram: encodeHistogram(latency),
    sendLagUs: sendLag === null ? null : summarize(sendLag),
    windowMs,
    answerSpanMs,
    throughput,
    predictionsPerSec: throughput * spec.rowsPerRequest,
    achievedRate,
    keptRate,
    generator: {
      threads: results.length,
      cpuUs: usage.cpuUs,
      wallMs: usage.wallMs,
      cpuPercent: usage.wallMs > 0 ? (usage.cpuUs / 1000 / usage.wallMs) * 100 : 0,
      cpuUsPerRequest: requestsTotal > 0 ? usage.cpuUs / requestsTotal : null,
      maxElu,
      queuedForConnection,
    },
    perThread,
  }
}

/**
 * Several runs of the same load as one result (the interleaved cross-check's rounds): counters
 * add, histograms add exactly, throughput is all answers over all answer spans. The send-lag
 * summaries cannot be added (only their summaries are kept), so the merged one is null.
 */
export function mergeLoadResults (results: readonly LoadResult[]): LoadResult {
  if (results.length === 0) throw new Error('nothing to merge')
  if (results.length === 1) return results[0]!
  const first = results[0]!
  const counts = emptyCounts()
  const latency = createHistogram()
  let windowMs = 0
  let answerSpanMs = 0
  let cpuUs = 0
  let wallMs = 0
  let requestsTotal = 0
  let maxElu = 0
  let queuedForConnection = 0
  for (const r of results) {
    addCounts(counts, r.counts)
    latency.add(decodeHistogram(r.histogram))
    windowMs += r.windowMs
    answerSpanMs += r.answerSpanMs
    cpuUs += r.generator.cpuUs
    wallMs += r.generator.wallMs
    if (r.generator.cpuUsPerRequest !== null) requestsTotal += r.generator.cpuUs / r.generator.cpuUsPerRequest
    maxElu = Math.max(maxElu, r.generator.maxElu)
    queuedForConnection += r.generator.queuedForConnection
  }
  const throughput = answerSpanMs > 0 ? counts.ok / (answerSpanMs / 1000) : 0
  const achievedRate = first.spec.mode === 'open' && windowMs > 0 ? counts.sentInWindow / (windowMs / 1000) : null
  return {
    spec: { ...first.spec, durationMs: results.reduce((a, r) => a + r.spec.durationMs, 0) },
    target: first.target,
    startedAt: first.startedAt,
    counts,
    latencyUs: summarize(latency),
    histogram: encodeHistogram(latency),
    sendLagUs: null,
    windowMs,
    answerSpanMs,
    throughput,
    predictionsPerSec: throughput * first.spec.rowsPerRequest,
    achievedRate,
    keptRate: first.spec.mode === 'open' ? results.every((r) => r.keptRate === true) : null,
    generator: {
      threads: first.generator.threads,
      cpuUs,
      wallMs,
      cpuPercent: wallMs > 0 ? (cpuUs / 1000 / wallMs) * 100 : 0,
      cpuUsPerRequest: requestsTotal > 0 ? cpuUs / requestsTotal : null,
      maxElu,
      queuedForConnection,
    },
    perThread: results.flatMap((r) => r.perThread),
  }
}
