/**
 * Worker-thread entry: owns one onnxruntime-node session and answers one batch per task.
 *
 * The session is created and warmed when Piscina loads this module at worker start (not at the
 * first task), and the worker then reports ready on the pool's BroadcastChannel. No top-level
 * await: Piscina loads handlers with require() first, which cannot load a module that has one.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { move, workerData } from 'piscina'
import type { BatchTask, InferenceWorkerData, WorkerReadyMessage } from './messages.js'

const data = workerData as InferenceWorkerData
const { inputName, outputName, featureCount } = data

function report (message: WorkerReadyMessage): void {
  const channel = new BroadcastChannel(data.readyChannel)
  channel.postMessage(message)
  channel.close()
}

async function openSession (): Promise<ort.InferenceSession> {
  // One intra-op thread: parallelism comes from the worker count, and ORT's own pool would
  // oversubscribe the cores (and spin) with several sessions per process (SERVING-NOTES §3.4).
  const created = await ort.InferenceSession.create(data.modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  })
  const warm = new Float32Array(data.maxBatchSize * featureCount).fill(Number.NaN)
  for (let i = 0; i < data.warmupRuns; i++) {
    const rows = i % 2 === 0 ? 1 : data.maxBatchSize
    await created.run({ [inputName]: new ort.Tensor('float32', warm.subarray(0, rows * featureCount), [rows, featureCount]) }, [outputName])
  }
  return created
}

async function runBatch (session: ort.InferenceSession, task: BatchTask): Promise<unknown> {
  const { buffer, rows } = task
  const started = process.hrtime.bigint()
  const input = new Float32Array(buffer, 0, rows * featureCount)
  const result = await session.run({ [inputName]: new ort.Tensor('float32', input, [rows, featureCount]) }, [outputName])
  const probabilities = result[outputName]!.data as Float32Array
  const out = new Float32Array(buffer)
  // probabilities is [rows, 2]: column 1 is P(up). Written over the consumed input.
  for (let i = 0; i < rows; i++) out[i] = probabilities[i * 2 + 1]!
  out[rows] = Number(process.hrtime.bigint() - started) / 1000
  return move(buffer)
}

/**
 * The handler, as a promise: Piscina awaits it before the worker reports for work. That matters
 * because between tasks Piscina parks the worker in Atomics.wait, which freezes any async work
 * still pending; a session load started but not awaited here would never finish.
 */
export default openSession().then(
  (session) => {
    report({ threadId, ok: true, error: null })
    return (task: BatchTask) => runBatch(session, task)
  },
  (err: unknown) => {
    report({ threadId, ok: false, error: err instanceof Error ? err.message : String(err) })
    throw err
  },
)
