import { BroadcastChannel } from 'node:worker_threads'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { ModelIncompatibleError, ModelLoadError } from '../errors.js'
import type { BatchTask, InferenceWorkerData, WorkerReadyMessage } from './messages.js'
import { completeFrom, type BatchCompletion } from '../batching/dynamic-batcher.js'
import { SharedSlots, type RowSlice } from './shared-slots.js'
import type { InputSpec } from '../features/window-input.js'
import { kWindowFloats, kWindowOffset } from '../features/row-layout.js'

/**
 * How a batch reaches a worker. `shared-memory` (default): through the worker's SharedArrayBuffer
 * slot, woken with Atomics. `message`: one Piscina task per batch, the buffer transferred both
 * ways; kept as the measured baseline (bench) and as a fallback.
 */
export type { WorkerTransport } from '../config/schema.js'
import type { WorkerTransport } from '../config/schema.js'

export interface InferencePoolOptions {
  readonly modelPath: string
  /** The model file, read and checked by the loader; every worker loads these bytes. */
  readonly modelBytes: Uint8Array
  readonly inputName: string
  readonly outputName: string
  readonly featureCount: number
  /**
   * The input the workers build (absent: tabular rows of `featureCount`). Windowed members read
   * the rows' window block and compute their tensor in the worker (docs/phase2.md says why).
   */
  readonly input?: InputSpec
  /** Float32 slots per row in dispatched buffers (default `featureCount`: compact rows). */
  readonly rowStride?: number
  readonly maxBatchSize: number
  readonly workers: number
  readonly warmupRuns: number
  /** Shared-memory transport: how long a worker polls for the next batch before sleeping (µs). */
  readonly workerSpinUs?: number
  /** How long every worker may take to load and warm its session. */
  readonly readyTimeoutMs: number
  /** A worker died outside a task (Piscina replaces it); without a listener the process would crash. */
  readonly onWorkerError?: (err: unknown) => void
  readonly transport?: WorkerTransport
}

// The worker keeps this module's extension: `.ts` when run from source (tests, tsx), `.js` from dist/.
const kWorkerFile = fileURLToPath(new URL(`./inference-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
let poolCounter = 0

/**
 * A fixed set of worker threads, each holding one ORT session of one model version. One `run()`
 * per batch: each task carries a transferred buffer (see messages.ts), never per-request objects.
 *
 * A model version is a pool: a new version gets a new pool, warmed beside the old one, so that a
 * swap never makes a request wait for a model load.
 */
export class InferencePool {
  readonly workers: number
  readonly transport: WorkerTransport
  private readonly piscina: Piscina<BatchTask, ArrayBuffer>
  private readonly slots: SharedSlots | null

  private constructor (piscina: Piscina<BatchTask, ArrayBuffer>, options: InferencePoolOptions) {
    this.piscina = piscina
    this.workers = options.workers
    this.transport = options.transport ?? 'shared-memory'
    this.slots = this.transport === 'shared-memory'
      ? new SharedSlots(piscina as unknown as Piscina, options.workers, options.maxBatchSize, options.featureCount, (err) => { options.onWorkerError?.(err) }, rowSliceOf(options))
      : null
  }

  /**
   * Runs one batch reading rows from `source` and writing answers to `target` (a model set's
   * members share one batch). Shared-memory transport only: the message transport moves the
   * buffer it sends, so two pools cannot be given the same one.
   */
  dispatchFrom (source: ArrayBuffer, target: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    if (this.slots === null) throw new TypeError('dispatchFrom needs the shared-memory transport')
    this.slots.dispatchFrom(source, target, rows, completion)
  }

  /** Starts the workers and resolves once every one has loaded and warmed its session. */
  static async start (options: InferencePoolOptions): Promise<InferencePool> {
    const readyChannel = `inference-ready-${process.pid}-${++poolCounter}`
    const channel = new BroadcastChannel(readyChannel)
    const ready = new Set<number>()
    let piscina: Piscina<BatchTask, ArrayBuffer> | null = null
    try {
      const allReady = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new ModelLoadError(`only ${ready.size} of ${options.workers} inference workers were ready after ${options.readyTimeoutMs} ms`))
        }, options.readyTimeoutMs)
        channel.onmessage = (event: unknown) => {
          const msg = (event as { data: WorkerReadyMessage }).data
          if (!msg.ok) {
            clearTimeout(timer)
            // The worker's probe found the graph at odds with its metadata: say so with that code.
            reject(msg.code === 'ERR_MODEL_INCOMPATIBLE'
              ? new ModelIncompatibleError(msg.error ?? 'unknown error')
              : new ModelLoadError(`inference worker failed to load ${options.modelPath}: ${msg.error ?? 'unknown error'}`))
            return
          }
          ready.add(msg.threadId)
          if (ready.size >= options.workers) {
            clearTimeout(timer)
            resolve()
          }
        }
      })
      const workerData: InferenceWorkerData = {
        modelPath: options.modelPath,
        modelBytes: options.modelBytes,
        inputName: options.inputName,
        outputName: options.outputName,
        featureCount: options.featureCount,
        input: options.input ?? { kind: 'tabular' },
        rowStride: options.rowStride ?? options.featureCount,
        maxBatchSize: options.maxBatchSize,
        warmupRuns: options.warmupRuns,
        spinUs: options.workerSpinUs ?? 0,
        readyChannel,
      }
      piscina = new Piscina<BatchTask, ArrayBuffer>({
        filename: kWorkerFile,
        workerData,
        // Fixed size: sessions are never reaped by idleTimeout and re-created on the next burst.
        minThreads: options.workers,
        maxThreads: options.workers,
        idleTimeout: Number.MAX_SAFE_INTEGER,
        concurrentTasksPerWorker: 1,
        // Piscina's queue is left unbounded: the batcher bounds what it sends (one batch per worker,
        // plus batches past max_queue_delay_us, themselves bounded by max_queue_size).
        // We keep our own histograms.
        recordTiming: false,
      })
      const onWorkerError = options.onWorkerError
      piscina.on('error', (err: unknown) => {
        if (onWorkerError !== undefined) onWorkerError(err)
      })
      await allReady
      return new InferencePool(piscina, options)
    } catch (err) {
      if (piscina !== null) await piscina.destroy().catch(() => { /* already failing: the load error is what matters */ })
      throw err
    } finally {
      channel.close()
    }
  }

  /** Runs one batch; `completion` gets the same buffer back, answers written over its head. */
  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    if (this.slots !== null) {
      this.slots.dispatch(buffer, rows, completion)
      return
    }
    completeFrom(this.piscina.run({ buffer, rows }, { transferList: [buffer] }), completion)
  }


  /** Worker threads, for tests that need to kill one. */
  get threads (): readonly import('node:worker_threads').Worker[] {
    return this.piscina.threads
  }

  /** Graceful by default; `force` (a drain that timed out) fails what is pending and kills the threads. */
  async close (force = false): Promise<void> {
    if (this.slots !== null) await this.slots.close(force)
    if (force) await this.piscina.destroy()
    else await this.piscina.close({ force: false })
  }
}

/** What of each row the pool's slots carry: the features (tabular) or the window block. */
function rowSliceOf (options: InferencePoolOptions): RowSlice {
  const stride = options.rowStride ?? options.featureCount
  if (options.input !== undefined && options.input.kind !== 'tabular') return { stride, offset: kWindowOffset, floats: kWindowFloats }
  return { stride, offset: 0, floats: options.featureCount }
}
