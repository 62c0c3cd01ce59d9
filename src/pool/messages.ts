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
  readonly modelPath: string
  readonly inputName: string
  readonly outputName: string
  readonly featureCount: number
  readonly maxBatchSize: number
  readonly warmupRuns: number
  /** BroadcastChannel name on which each worker reports that its session is loaded and warm. */
  readonly readyChannel: string
}

export interface WorkerReadyMessage {
  readonly threadId: number
  readonly ok: boolean
  readonly error: string | null
}
