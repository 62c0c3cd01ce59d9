import type { InputSpec } from '../features/window-input.js'

/**
 * What crosses the thread boundary, one message per batch.
 *
 * The batch buffer is an ArrayBuffer of `maxBatchSize * featureCount` float32 slots. It is moved
 * (transferred, not copied) to the worker and moved back with the answers written over its head:
 *
 *   to the worker:   [ row 0: f0 f1 ... fF-1 | row 1: ... | ... | row n-1 | unused ... ]
 *   back:            [ p0 p1 ... pn-1 | inferenceUs | (stale feature data) ... ]
 *
 * p_i is the model's probability of class 1 (an up-move) for row i. Reusing the same buffer means
 * one transfer each way and no allocation per batch on either side.
 */
export interface BatchTask {
  readonly buffer: ArrayBuffer
  readonly rows: number
}

/** Data every worker of a pool is started with. */
export interface InferenceWorkerData {
  /** For messages only: workers load `modelBytes` (on a SharedArrayBuffer, not copied per worker). */
  readonly modelPath: string
  readonly modelBytes: Uint8Array
  readonly inputName: string
  readonly outputName: string
  readonly featureCount: number
  /** Tabular rows, or a windowed input built in the worker from each row's window block. */
  readonly input: InputSpec
  /** Float32 slots per row of a transferred batch (message transport; slots hold packed rows). */
  readonly rowStride: number
  readonly maxBatchSize: number
  readonly warmupRuns: number
  /** worker_spin_us: polling time before Atomics.wait in the serve loop (0: sleep at once). */
  readonly spinUs: number
  /** BroadcastChannel name on which each worker reports that its session is loaded and warm. */
  readonly readyChannel: string
}

export interface WorkerReadyMessage {
  readonly threadId: number
  readonly ok: boolean
  readonly error: string | null
  /** The error's stable code when it is one of ours (ERR_MODEL_INCOMPATIBLE from the probe). */
  readonly code?: string
}

/**
 * Shared-memory channel, one per worker: the hot path of the default transport.
 *
 *   SharedArrayBuffer of one worker:
 *   [ Int32 state | Int32 rows | Int32 spare | Int32 spare | Float32 data: maxBatchSize * featureCount ]
 *
 *   main:   copy rows into data, rows = n, state = REQUEST, notify; Atomics.waitAsync(state != REQUEST)
 *   worker: Atomics.wait until REQUEST (or STOP); run the session; write answers over the head of
 *           data (p_0 .. p_n-1, inferenceUs) as in the transfer layout; state = DONE (or FAILED), notify
 *   main:   read answers, state = IDLE
 *
 * A worker thread parked in Atomics.wait costs no CPU, and a wake-up is a futex, not a message:
 * measured ~14 us per round trip against ~70-80 us for a Piscina task on the same machine.
 */
export const kSlotState = 0
export const kSlotRows = 1
export const kSlotControlBytes = 16
export const kSlotIdle = 0
export const kSlotRequest = 1
export const kSlotDone = 2
export const kSlotFailed = 3
export const kSlotStop = 4

/** The long-running task each worker runs in shared-memory mode. */
export interface ServeTask {
  readonly slot: SharedArrayBuffer
}
