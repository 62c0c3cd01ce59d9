import { performance } from 'node:perf_hooks'
import { kRowDoubles, kRowFloats, kWindowOffset } from '../features/row-layout.js'
import { kServing } from '../monitoring/bar-track.js'
import {
  kStatusDeadlineExceeded, kStatusInternal, kStatusOk, kStatusShuttingDown, PendingRequest, type Component,
} from './pending-request.js'

/**
 * Where a runner reports a batch's outcome: exactly one call, never during `dispatch` itself.
 * An object rather than a promise: each batch already is one (Batch implements it), so handing a
 * batch to the pool allocates no promise and no closures.
 */
export interface BatchCompletion {
  batchDone (buffer: ArrayBuffer): void
  batchFailed (err: unknown): void
}

/** The model side the batcher feeds: a pool of workers and the version it serves. */
export interface BatchRunner {
  readonly workers: number
  readonly modelVersion: string
  readonly modelVersionJson: string
  /** True when a member reads the rows' window block (row-layout.ts): the service then writes it. */
  readonly windowed: boolean
  /**
   * A model set's per-member parts of row `row` of an answered batch (model-set.ts writes them
   * past the answers); null for a single model. Called once per answered request.
   */
  componentsOf (answers: Float32Array, rows: number, row: number): readonly Component[] | null
  /** Runs one batch; the buffer comes back in `batchDone` with the answers over its head. */
  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void
}

/** Reports a promised batch to a completion: for runners built on promises (Piscina tasks, tests). */
export function completeFrom (result: Promise<ArrayBuffer>, completion: BatchCompletion): void {
  result.then((buffer) => { completion.batchDone(buffer) }, (err: unknown) => { completion.batchFailed(err) })
}

/** `dispatch` as a promise, for callers off the hot path (shadow scoring, tests). */
export function runBatch (runner: Pick<BatchRunner, 'dispatch'>, buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => { runner.dispatch(buffer, rows, { batchDone: resolve, batchFailed: reject }) })
}

export interface BatcherMetrics {
  recordQueueWait (waitUs: number): void
  recordBatch (rows: number, inferenceUs: number): void
  recordBatchFailure (rows: number, err: unknown): void
}

/**
 * Sees every batch that reaches the model (shadow scoring). `onDispatch` runs before the buffer
 * leaves for the worker and must copy what it keeps; it returns a ticket (or -1 to skip) that is
 * handed back with the results or the failure.
 */
export interface BatchObserver {
  onDispatch (features: Float32Array, rows: number, requests?: ReadonlyArray<PendingRequest | null>): number
  onResult (ticket: number, probabilities: Float32Array, rows: number): void
  onFailure (ticket: number): void
}

export interface DynamicBatcherOptions {
  readonly maxBatchSize: number
  readonly maxQueueSize: number
  /**
   * 0 (default): work-conserving, a batch leaves as soon as a worker is free. >0: Triton's
   * max_queue_delay: a partly filled batch may wait this long for company even while a worker is
   * idle, trading latency at low load for bigger batches. Never more batches than workers.
   */
  readonly maxQueueDelayUs: number
}

/**
 * A batch being gathered, in flight, or back. `features` views `buffer` while the batch is on this
 * thread; during inference the buffer belongs to the worker (transferred) and the view is detached.
 */
class Batch implements BatchCompletion {
  readonly owner: DynamicBatcher
  buffer: ArrayBuffer
  features: Float32Array
  /** The same buffer as doubles: the rows' window blocks. */
  windows: Float64Array
  size = 0
  readonly requests: Array<PendingRequest | null>
  /** performance.now() of the first request, for max_queue_delay_us. */
  openedMs = 0
  runner: BatchRunner | null = null
  /** The observer that took this batch and its ticket (-1: none); kept per batch across observer swaps. */
  observer: BatchObserver | null = null
  ticket = -1

  constructor (owner: DynamicBatcher, buffer: ArrayBuffer, capacity: number) {
    this.owner = owner
    this.buffer = buffer
    this.features = new Float32Array(buffer)
    this.windows = new Float64Array(buffer)
    this.requests = new Array<PendingRequest | null>(capacity).fill(null)
  }

  /** The buffer came back (the message transport moves it; shared memory returns the same one). */
  adopt (buffer: ArrayBuffer): void {
    if (buffer === this.buffer) return
    this.buffer = buffer
    this.features = new Float32Array(buffer)
    this.windows = new Float64Array(buffer)
  }

  batchDone (buffer: ArrayBuffer): void { this.owner.onBatchDone(this, buffer) }
  batchFailed (err: unknown): void { this.owner.onBatchFailed(this, err) }
}

/**
 * Work-conserving dynamic batcher between the transports and the worker pool.
 *
 * - A request goes to an idle worker in the turn it arrived (at the end of that turn's socket
 *   callbacks, with whatever arrived beside it); it never waits for a timer or for company.
 * - While every worker is busy, arriving requests are written straight into the batch that is
 *   gathering (its rows are the transfer buffer itself), up to max_batch_size; a full batch is
 *   closed and the next one opened. When a worker frees, the oldest batch goes.
 * - The number of queued requests is bounded by max_queue_size: the caller checks `canAdmit()`
 *   first and sheds when it is false.
 * - Deadlines are checked when a batch is dispatched; expired requests never reach the model.
 *
 *   gathering: [ B0 (full) | B1 (full) | B2 (open, 7 rows) ]  -> dispatched oldest first
 *   in flight: at most one batch per worker
 */
export class DynamicBatcher {
  private readonly options: DynamicBatcherOptions
  private readonly metrics: BatcherMetrics
  private runner: BatchRunner | null = null
  private observer: BatchObserver | null = null
  /**
   * Gathering batches, oldest first; a ring sized for the queue bound plus what idle workers take
   * at the end of a turn, doubled in the rare case a bigger pool (a reload) needs more.
   */
  private gathering: Array<Batch | null>
  private head = 0
  private count = 0
  private readonly freeBatches: Batch[] = []
  private readonly freeRequests: PendingRequest[] = []
  /** The batch `openRow` handed out, until `commit` or the next `openRow`. */
  private openBatch: Batch | null = null
  private queued = 0
  private inFlightBatches = 0
  private inFlightRequests = 0
  private delayTimer: NodeJS.Timeout | null = null
  /** A dispatch is due once this loop turn's I/O callbacks are done (see `commit`). */
  private turnEndArmed = false
  private readonly rowFloats = kRowFloats
  private idleWaiters: Array<() => void> = []

  constructor (options: DynamicBatcherOptions, metrics: BatcherMetrics) {
    this.options = options
    this.metrics = metrics
    const slots = Math.ceil(options.maxQueueSize / options.maxBatchSize) + 1
    this.gathering = new Array<Batch | null>(slots).fill(null)
    this.onDelayTimer = this.onDelayTimer.bind(this)
    this.onTurnEnd = this.onTurnEnd.bind(this)
  }

  /** The model new batches go to; batches already sent finish on the model they were sent to. */
  setRunner (runner: BatchRunner | null): void {
    this.runner = runner
    this.schedule()
  }

  /** Shadow scoring hook; null (the default) costs one check per batch. */
  setObserver (observer: BatchObserver | null): void {
    this.observer = observer
  }

  /** Requests admitted and not yet answered (gathering + in flight). */
  get depth (): number { return this.queued + this.inFlightRequests }
  get queueDepth (): number { return this.queued }

  /**
   * False past max_queue_size requests waiting for a worker. Requests of this turn that idle
   * workers will take at its end are not waiting: they do not count against the bound.
   */
  canAdmit (): boolean {
    const workers = this.runner?.workers ?? 0
    const idle = workers > this.inFlightBatches ? workers - this.inFlightBatches : 0
    return this.queued < this.options.maxQueueSize + idle * this.options.maxBatchSize
  }

  /**
   * The batch whose next row the caller writes into: `features` at `rowOffset()`. Follow with
   * `commit` (the row is used) or nothing (the row is left free).
   */
  openRow (): Float32Array {
    let batch = this.count > 0 ? this.gathering[(this.head + this.count - 1) % this.gathering.length]! : null
    if (batch === null || batch.size === this.options.maxBatchSize) {
      batch = this.freeBatches.pop() ?? this.newBatch()
      batch.size = 0
      batch.openedMs = performance.now()
      if (this.count === this.gathering.length) this.growRing()
      this.gathering[(this.head + this.count) % this.gathering.length] = batch
      this.count++
    }
    this.openBatch = batch
    return batch.features
  }

  /** Float offset of the row `openRow` made available. */
  rowOffset (): number { return this.openBatch!.size * this.rowFloats }

  /** The open batch as doubles, for the row's window block at `windowOffset()`. */
  openWindows (): Float64Array { return this.openBatch!.windows }

  /** Float64 offset of the open row's window block (row-layout.ts). */
  windowOffset (): number { return this.openBatch!.size * kRowDoubles + kWindowOffset / 2 }

  /** Takes a pooled request object; fill it and pass it to `commit`. */
  acquire (): PendingRequest {
    return this.freeRequests.pop() ?? new PendingRequest()
  }

  /** Gives back a request that was acquired but not committed. */
  release (request: PendingRequest): void {
    request.clear()
    this.freeRequests.push(request)
  }

  /**
   * Marks the row from `openRow` as used by `request`; it goes to an idle worker at the end of
   * this event-loop turn's I/O callbacks (setImmediate), never later and never on a timer. uWS
   * delivers every ready socket in one turn, so the requests that arrived together leave together:
   * one worker wake-up for them instead of one each. Measured on 2 cores, our generator, 64
   * connections, same run: 50-55k against 44-45k req/s, p99 2.5-3.2 against 3.7-4.1 ms, batch
   * mean 8.8 against 6.7 rows; one connection: p50 unchanged (224-242 against 232-245 µs).
   */
  commit (request: PendingRequest): void {
    const batch = this.openBatch!
    batch.requests[batch.size++] = request
    this.queued++
    if (!this.turnEndArmed) {
      this.turnEndArmed = true
      setImmediate(this.onTurnEnd)
    }
  }

  /**
   * A shutdown whose drain timed out: every request still gathering (never sent to a worker) is
   * answered "shutting down" now. In-flight batches are the pool's to fail.
   */
  abandonQueued (): void {
    if (this.delayTimer !== null) { clearTimeout(this.delayTimer); this.delayTimer = null }
    while (this.count > 0) {
      const batch = this.gathering[this.head]!
      this.gathering[this.head] = null
      this.head = (this.head + 1) % this.gathering.length
      this.count--
      this.queued -= batch.size
      for (let i = 0; i < batch.size; i++) {
        const req = batch.requests[i]!
        batch.requests[i] = null
        req.status = kStatusShuttingDown
        this.finish(req)
      }
      this.recycle(batch)
    }
    this.openBatch = null
    this.checkIdle()
  }

  /** Resolves when nothing is gathering or in flight (graceful shutdown). */
  whenIdle (): Promise<void> {
    if (this.depth === 0) return Promise.resolve()
    return new Promise(resolve => { this.idleWaiters.push(resolve) })
  }

  private growRing (): void {
    const old = this.gathering
    const ring = new Array<Batch | null>(old.length * 2).fill(null)
    for (let i = 0; i < this.count; i++) ring[i] = old[(this.head + i) % old.length]!
    this.gathering = ring
    this.head = 0
  }

  private newBatch (): Batch {
    return new Batch(this, new ArrayBuffer(this.options.maxBatchSize * this.rowFloats * 4), this.options.maxBatchSize)
  }

  private schedule (): void {
    const runner = this.runner
    if (runner === null) return
    const delayUs = this.options.maxQueueDelayUs
    while (this.count > 0 && this.inFlightBatches < runner.workers) {
      if (delayUs > 0 && this.count === 1 && this.holdForCompany(delayUs)) return
      this.dispatchOldest(runner)
    }
  }

  /** With max_queue_delay_us: keep the only, partly filled batch a little longer; arms the timer. */
  private holdForCompany (delayUs: number): boolean {
    const batch = this.gathering[this.head]!
    if (batch.size >= this.options.maxBatchSize) return false
    const waitMs = batch.openedMs + delayUs / 1000 - performance.now()
    if (waitMs <= 0) return false
    if (this.delayTimer === null) this.delayTimer = setTimeout(this.onDelayTimer, waitMs)
    return true
  }

  private dispatchOldest (runner: BatchRunner): void {
    if (this.delayTimer !== null) {
      // The held batch leaves now (filled, or a worker freed): its timer must not cut the next one short.
      clearTimeout(this.delayTimer)
      this.delayTimer = null
    }
    const batch = this.gathering[this.head]!
    this.gathering[this.head] = null
    this.head = (this.head + 1) % this.gathering.length
    this.count--
    if (this.openBatch === batch) this.openBatch = null
    this.queued -= batch.size

    // Drop expired requests before inference, compacting the surviving rows.
    const now = performance.now()
    let kept = 0
    for (let i = 0; i < batch.size; i++) {
      const req = batch.requests[i]!
      batch.requests[i] = null
      if (now > req.deadlineMs) {
        req.status = kStatusDeadlineExceeded
        this.finish(req)
        continue
      }
      if (kept !== i) batch.features.copyWithin(kept * this.rowFloats, i * this.rowFloats, (i + 1) * this.rowFloats)
      req.dispatchedMs = now
      this.metrics.recordQueueWait(Math.round((now - req.admittedMs) * 1000))
      batch.requests[kept++] = req
    }
    batch.size = kept
    if (kept === 0) {
      this.recycle(batch)
      this.checkIdle()
      return
    }
    batch.runner = runner
    batch.observer = this.observer
    batch.ticket = this.observer === null ? -1 : this.observer.onDispatch(batch.features, kept, batch.requests)
    this.inFlightBatches++
    this.inFlightRequests += kept
    runner.dispatch(batch.buffer, kept, batch)
  }

  /** The pool's answer for a batch (through Batch.batchDone). */
  onBatchDone (batch: Batch, buffer: ArrayBuffer): void {
    batch.adopt(buffer)
    const out = batch.features
    const runner = batch.runner!
    const rows = batch.size
    this.metrics.recordBatch(rows, Math.round(out[rows]!))
    if (batch.ticket >= 0) batch.observer!.onResult(batch.ticket, out, rows)
    for (let i = 0; i < rows; i++) {
      const req = batch.requests[i]!
      batch.requests[i] = null
      const p = out[i]!
      req.modelVersion = runner.modelVersion
      req.modelVersionJson = runner.modelVersionJson
      req.components = runner.componentsOf(out, rows, i)
      // Not a probability (a graph that emits NaN, a set none of whose members could answer):
      // INTERNAL, never an answer with NaN in it.
      if (!(p >= 0 && p <= 1)) {
        req.status = kStatusInternal
        this.finish(req)
        continue
      }
      req.status = kStatusOk
      req.probability = p
      const track = req.track
      if (track !== null) track.record(kServing, req.bar, req.seq, p, runner.modelVersion)
      this.finish(req)
    }
    this.afterBatch(batch, rows)
  }

  /** A worker died or the session threw: every request of the batch is answered INTERNAL at once. */
  onBatchFailed (batch: Batch, err: unknown): void {
    const rows = batch.size
    this.metrics.recordBatchFailure(rows, err)
    if (batch.ticket >= 0) batch.observer!.onFailure(batch.ticket)
    for (let i = 0; i < rows; i++) {
      const req = batch.requests[i]!
      batch.requests[i] = null
      req.status = kStatusInternal
      this.finish(req)
    }
    // The buffer went to the worker and is gone with it: start this batch object afresh.
    batch.adopt(new ArrayBuffer(this.options.maxBatchSize * this.rowFloats * 4))
    this.afterBatch(batch, rows)
  }

  private afterBatch (batch: Batch, rows: number): void {
    this.inFlightBatches--
    this.inFlightRequests -= rows
    this.recycle(batch)
    this.schedule()
    this.checkIdle()
  }

  private finish (req: PendingRequest): void {
    const sink = req.sink
    if (sink !== null) {
      try {
        sink.complete(req)
      } catch (err) {
        // A sink must not throw; if one does, the other requests of the batch still get answers.
        process.emitWarning(`prediction sink threw: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    this.release(req)
  }

  private recycle (batch: Batch): void {
    batch.size = 0
    batch.runner = null
    batch.observer = null
    batch.ticket = -1
    this.freeBatches.push(batch)
  }

  private checkIdle (): void {
    if (this.depth !== 0 || this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  private onTurnEnd (): void {
    this.turnEndArmed = false
    this.schedule()
  }

  private onDelayTimer (): void {
    this.delayTimer = null
    const runner = this.runner
    if (runner === null || this.count === 0 || this.inFlightBatches >= runner.workers) return
    // The held batch's time is up (or it filled meanwhile): send it.
    this.dispatchOldest(runner)
    this.schedule()
  }
}
