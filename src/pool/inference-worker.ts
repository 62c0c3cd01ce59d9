/**
 * Worker-thread entry: owns one onnxruntime-node session and answers one batch per task.
 *
 * The session is created and warmed when Piscina loads this module at worker start (not at the
 * first task), and the worker then reports ready on the pool's BroadcastChannel. No top-level
 * await: Piscina loads handlers with require() first, which cannot load a module that has one.
 */
import { performance } from 'node:perf_hooks'
import { BroadcastChannel, threadId } from 'node:worker_threads'
import { move, workerData } from 'piscina'
import { probeModel } from '../model/model-probe.js'
import { openBatchSession, type BatchSession } from './batch-session.js'
import { RowInput } from './row-input.js'
import {
  kSlotControlBytes, kSlotDone, kSlotFailed, kSlotRequest, kSlotRows, kSlotState, kSlotStop,
  type BatchTask, type InferenceWorkerData, type ServeTask, type WorkerReadyMessage,
} from './messages.js'

const data = workerData as InferenceWorkerData
const { inputName, outputName, featureCount, spinUs } = data
/** Builds the session's input from the rows this worker is sent (tabular rows, or windows). */
const rowInput = new RowInput(data.input, featureCount, data.maxBatchSize)

function report (message: WorkerReadyMessage): void {
  const channel = new BroadcastChannel(data.readyChannel)
  channel.postMessage(message)
  channel.close()
}

async function openSession (): Promise<BatchSession> {
  // Validated here, off the main thread: the graph against its metadata, with a probe prediction.
  await probeModel(data.modelBytes, { modelPath: data.modelPath, inputName, outputName, featureCount, input: data.input })
  const created = await openBatchSession({ modelPath: data.modelPath, modelBytes: data.modelBytes, inputName, outputName, featureCount, rowDims: rowInput.rowDims })
  // Tabular rows warm with every feature missing; windowed ones with zeros (a flat window's GADF).
  const width = rowInput.rowLength
  const warm = new Float32Array(data.maxBatchSize * width).fill(data.input.kind === 'tabular' ? Number.NaN : 0)
  for (let i = 0; i < data.warmupRuns; i++) {
    const rows = i % 2 === 0 ? 1 : data.maxBatchSize
    await created.run(warm.subarray(0, rows * width), rows)
  }
  return created
}

/** Loaded and warmed once per worker; reported on the pool's channel either way. */
const sessionReady: Promise<BatchSession> = openSession().then(
  (session) => {
    report({ threadId, ok: true, error: null })
    return session
  },
  (err: unknown) => {
    const code = (err as { code?: unknown }).code
    report({ threadId, ok: false, error: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) })
    throw err
  },
)

async function runBatch (session: BatchSession, task: BatchTask): Promise<unknown> {
  const { buffer, rows } = task
  const started = process.hrtime.bigint()
  const stride = data.rowStride
  if (stride !== featureCount) {
    // Rows arrive at the batch buffer's stride (features/row-layout.ts): pack them in place.
    const view = new Float32Array(buffer)
    for (let r = 1; r < rows; r++) view.copyWithin(r * featureCount, r * stride, r * stride + featureCount)
  }
  const probabilities = await session.run(new Float32Array(buffer, 0, rows * featureCount), rows)
  const out = new Float32Array(buffer)
  // probabilities is [rows, 2]: column 1 is P(up). Written over the consumed input.
  for (let i = 0; i < rows; i++) out[i] = probabilities[i * 2 + 1]!
  out[rows] = Number(process.hrtime.bigint() - started) / 1000
  return move(buffer)
}

/**
 * Shared-memory mode: one task that never returns until told to stop, answering batches posted in
 * this worker's slot (layout in messages.ts). ORT refuses tensors over shared memory, so rows are
 * copied into this worker's own buffer first (a memcpy, no allocation).
 */
async function serveLoop (session: BatchSession, task: ServeTask): Promise<number> {
  const control = new Int32Array(task.slot, 0, kSlotControlBytes / 4)
  const shared = new Float32Array(task.slot, kSlotControlBytes)
  // Window blocks are doubles (windowed members only: a tabular slot's length need not be a multiple of 8).
  const windows = data.input.kind === 'tabular' ? new Float64Array(0) : new Float64Array(task.slot, kSlotControlBytes)
  let served = 0
  for (;;) {
    let state = Atomics.load(control, kSlotState)
    if (spinUs > 0 && state !== kSlotRequest && state !== kSlotStop) {
      // worker_spin_us: poll before sleeping. A batch posted meanwhile is taken without a futex
      // wake-up on either side, and the core stays warm (measured at one connection: p50 ~100
      // against ~200 µs); the price is a busy core while batches keep coming.
      const until = performance.now() + spinUs / 1000
      do {
        state = Atomics.load(control, kSlotState)
      } while (state !== kSlotRequest && state !== kSlotStop && performance.now() < until)
    }
    while (state !== kSlotRequest && state !== kSlotStop) {
      Atomics.wait(control, kSlotState, state)
      state = Atomics.load(control, kSlotState)
    }
    if (state === kSlotStop) return served
    const rows = control[kSlotRows]!
    const started = process.hrtime.bigint()
    try {
      const valid = rowInput.build(shared, windows, rows)
      let probabilities: Float32Array | null = null
      if (valid > 0) {
        // The native session answers synchronously: no await, so no trip round the event loop.
        const answer = session.run(rowInput.input.subarray(0, valid * rowInput.rowLength), valid)
        probabilities = answer instanceof Float32Array ? answer : await answer
      }
      rowInput.answer(probabilities, shared, rows)
      shared[rows] = Number(process.hrtime.bigint() - started) / 1000
      Atomics.store(control, kSlotState, kSlotDone)
    } catch {
      // The main thread fails this batch's requests (INTERNAL) and keeps the worker.
      Atomics.store(control, kSlotState, kSlotFailed)
    }
    Atomics.notify(control, kSlotState)
    served++
  }
}

/** Named handler for shared-memory mode (`piscina.run(task, { name: 'serve' })`). */
export const serve = sessionReadyHandler((session) => (task: ServeTask) => serveLoop(session, task))
// A failed load is reported on the channel and through the task; these guards keep it from also
// surfacing as an unhandled rejection that would kill the worker.
serve.catch(() => {})

/**
 * The handler, as a promise: Piscina awaits it before the worker reports for work. That matters
 * because between tasks Piscina parks the worker in Atomics.wait, which freezes any async work
 * still pending; a session load started but not awaited here would never finish.
 */
const batchHandler = sessionReadyHandler((session) => (task: BatchTask) => runBatch(session, task))
batchHandler.catch(() => {})
export default batchHandler

function sessionReadyHandler<T> (make: (session: BatchSession) => T): Promise<T> {
  return sessionReady.then(make)
}
