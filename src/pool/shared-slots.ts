import type { Piscina } from 'piscina'
import type { BatchCompletion } from '../batching/dynamic-batcher.js'
import { InferenceError } from '../errors.js'
import {
  kSlotControlBytes, kSlotDone, kSlotIdle, kSlotRequest, kSlotRows, kSlotState, kSlotStop,
  type ServeTask,
} from './messages.js'

/** One worker's shared slot and the batch it is answering. */
class Slot {
  buffer: SharedArrayBuffer
  control: Int32Array
  data: Float32Array
  /** `data` as 32-bit integers: the strided copy moves bits, never float values (see `post`). */
  words: Int32Array
  /** The long-running serve task on the worker that owns this slot. */
  task: Promise<number> | null = null
  /** The batch in flight: where answers go, and whom to tell (null: the slot is free). */
  target: ArrayBuffer | null = null
  rows = 0
  completion: BatchCompletion | null = null
  /** Bound once: arming a wake-up allocates no closure per batch. */
  readonly onWake: () => void

  constructor (bytes: number, onWake: (slot: Slot) => void) {
    this.buffer = new SharedArrayBuffer(bytes)
    this.control = new Int32Array(this.buffer, 0, kSlotControlBytes / 4)
    this.data = new Float32Array(this.buffer, kSlotControlBytes)
    this.words = new Int32Array(this.buffer, kSlotControlBytes)
    this.onWake = () => { onWake(this) }
  }

  /** A fresh buffer after a worker died: a late wake-up on the old one can then never be mistaken. */
  renew (bytes: number): void {
    this.buffer = new SharedArrayBuffer(bytes)
    this.control = new Int32Array(this.buffer, 0, kSlotControlBytes / 4)
    this.data = new Float32Array(this.buffer, kSlotControlBytes)
    this.words = new Int32Array(this.buffer, kSlotControlBytes)
  }
}

interface Waiting {
  readonly source: ArrayBuffer
  readonly target: ArrayBuffer
  readonly rows: number
  readonly completion: BatchCompletion
}

/** Which part of each batch row a pool's workers read (features/row-layout.ts). */
export interface RowSlice {
  /** Float32 slots per row in the batch buffer. */
  readonly stride: number
  /** First slot of the part read, and its length: what is copied, rows packed, into the slot. */
  readonly offset: number
  readonly floats: number
}

/**
 * Main-thread side of the shared-memory transport (layout in messages.ts). Piscina still owns the
 * threads: it starts them, replaces one that dies, and runs one `serve` task per worker; batches
 * cross through that worker's slot without messages, transfers or structured clones.
 *
 * The batcher never has more batches in flight than there are workers, so a free slot normally
 * exists; other callers (the shadow scorer) may queue, and are served in order as slots free.
 */
export class SharedSlots {
  private readonly piscina: Piscina
  private readonly bytes: number
  private readonly slots: Slot[]
  private readonly free: Slot[]
  private readonly slice: RowSlice
  private closing = false
  private readonly onWorkerLost: (err: unknown) => void
  private readonly waiting: Waiting[] = []
  private drained: (() => void) | null = null

  /** `slice` defaults to compact rows of `featureCount` floats (tests, tools). */
  constructor (piscina: Piscina, workers: number, maxBatchSize: number, featureCount: number, onWorkerLost: (err: unknown) => void,
    slice: RowSlice = { stride: featureCount, offset: 0, floats: featureCount }) {
    this.piscina = piscina
    this.slice = slice
    // Answers (rows + 1 floats) are written over the head of the slot's data: keep room for them.
    this.bytes = kSlotControlBytes + maxBatchSize * Math.max(slice.floats, 2) * 4
    this.onWorkerLost = onWorkerLost
    const wake = (slot: Slot): void => { this.onWake(slot) }
    this.slots = Array.from({ length: workers }, () => new Slot(this.bytes, wake))
    this.free = [...this.slots]
    for (const slot of this.slots) this.startServing(slot)
  }

  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    this.dispatchFrom(buffer, buffer, rows, completion)
  }

  /**
   * Rows are read from `source` (when the batch is posted to a worker: a queued batch's source
   * must stay unchanged until then) and answers written to `target`: a model set sends one batch
   * to several members, each with its own answer buffer.
   */
  dispatchFrom (source: ArrayBuffer, target: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    if (this.closing) {
      // Never during dispatch itself (BatchCompletion's contract).
      queueMicrotask(() => { completion.batchFailed(new InferenceError('the inference pool is closed')) })
      return
    }
    const slot = this.free.pop()
    if (slot === undefined) {
      this.waiting.push({ source, target, rows, completion })
      return
    }
    slot.completion = completion
    this.post(slot, source, target, rows)
  }

  private post (slot: Slot, source: ArrayBuffer, target: ArrayBuffer, rows: number): void {
    const { stride, offset, floats } = this.slice
    if (stride === floats) {
      slot.data.set(new Float32Array(source, 0, rows * floats))
    } else {
      // As 32-bit integers: a window block holds doubles, and a float32 read and write of half a
      // double can rewrite it (NaN canonicalization turns a missing close into a number).
      const from = new Int32Array(source)
      const to = slot.words
      for (let r = 0; r < rows; r++) {
        const src = r * stride + offset
        const dst = r * floats
        for (let k = 0; k < floats; k++) to[dst + k] = from[src + k]!
      }
    }
    slot.target = target
    slot.rows = rows
    const control = slot.control
    control[kSlotRows] = rows
    Atomics.store(control, kSlotState, kSlotRequest)
    Atomics.notify(control, kSlotState)
    this.await(slot)
  }

  /** Calls `onWake` once the slot's state is no longer REQUEST (or on a spurious wake-up: it re-checks). */
  private await (slot: Slot): void {
    const wait = Atomics.waitAsync(slot.control, kSlotState, kSlotRequest)
    if (wait.async) void wait.value.then(slot.onWake)
    else queueMicrotask(slot.onWake) // answered already: still not during dispatch
  }

  /**
   * Lets the batches in flight finish (a retired model's pool closes while its last batches are
   * still being answered), then stops every serve loop and waits for them to return. `force`
   * (the drain timed out: a session may be hung) answers what is still pending with an error at
   * once and does not wait for the serve loops; the caller then destroys the threads.
   */
  async close (force = false): Promise<void> {
    this.closing = true
    if (force) {
      this.failPending(new InferenceError('the server shut down before this batch was answered'))
    } else if (this.free.length < this.slots.length || this.waiting.length > 0) {
      await new Promise<void>((resolve) => { this.drained = resolve })
    }
    for (const slot of this.slots) {
      Atomics.store(slot.control, kSlotState, kSlotStop)
      Atomics.notify(slot.control, kSlotState)
    }
    if (!force) await Promise.allSettled(this.slots.map(s => s.task))
  }

  private failPending (err: InferenceError): void {
    for (const w of this.waiting.splice(0)) w.completion.batchFailed(err)
    for (const slot of this.slots) {
      const completion = slot.completion
      if (completion === null) continue
      slot.target = null
      slot.completion = null
      completion.batchFailed(err)
    }
  }

  private onWake (slot: Slot): void {
    // A stale wake-up (the slot was answered or failed already): nothing of ours is pending.
    if (slot.completion === null) return
    const control = slot.control
    const state = Atomics.load(control, kSlotState)
    if (state === kSlotRequest) {
      // Woken while our batch is still unanswered: a spurious wake-up, not a stale one. The worker
      // stores DONE and only then notifies, so its notify for the previous batch on this slot can
      // land after we saw DONE (waitAsync returned "not-equal" at once), reused the slot and armed
      // a new wait: that late notify wakes the new wait. Returning here lost the batch for good
      // (issue 4: ~1 request in 200,000 never answered on /ws at 64 in flight). Like any futex
      // waiter, re-check and wait again.
      this.await(slot)
      return
    }
    const target = slot.target!
    const completion = slot.completion
    if (state === kSlotDone) new Float32Array(target).set(slot.data.subarray(0, slot.rows + 1))
    Atomics.store(control, kSlotState, kSlotIdle)
    this.release(slot)
    if (state === kSlotDone) completion.batchDone(target)
    else completion.batchFailed(new InferenceError('the ONNX session failed on this batch'))
  }

  private release (slot: Slot): void {
    slot.target = null
    slot.completion = null
    const next = this.waiting.shift()
    if (next !== undefined) {
      slot.completion = next.completion
      this.post(slot, next.source, next.target, next.rows)
      return
    }
    this.free.push(slot)
    if (this.drained !== null && this.free.length === this.slots.length) {
      const drained = this.drained
      this.drained = null
      drained()
    }
  }

  private startServing (slot: Slot): void {
    const task: ServeTask = { slot: slot.buffer }
    slot.task = this.piscina.run(task, { name: 'serve' })
    slot.task.then(
      () => { /* stopped on close */ },
      (err: unknown) => {
        // The worker died (crash, OOM, terminate). Piscina replaces the thread; answer the batch it
        // held with INTERNAL now, and give the slot a fresh buffer and serve loop.
        this.onWorkerLost(err)
        if (this.closing) {
          // No new serve loop while closing, but the batch it held is answered and the slot
          // released, so close() does not wait for it forever.
          const completion = slot.completion
          if (completion !== null) this.release(slot)
          completion?.batchFailed(new InferenceError('the inference worker died while answering this batch', err))
          return
        }
        const completion = slot.completion
        slot.renew(this.bytes)
        this.startServing(slot)
        // A free slot is already in the free list; a busy one is released (and may take queued work).
        if (completion !== null) this.release(slot)
        completion?.batchFailed(new InferenceError('the inference worker died while answering this batch', err))
      },
    )
  }
}
