/**
 * Calls waiting for an answer on the WebSocket, by the id sent with them. Each has its own
 * timeout; on a disconnect every one of them is failed at once (never left hanging).
 */
import { ClientTimeoutError, type PredictionClientError } from './errors.js'

export const kCallSingle = 0
export const kCallBatch = 1
export type CallKind = typeof kCallSingle | typeof kCallBatch

interface CallState {
  readonly reject: (err: Error) => void
  readonly timeoutMs: number
  timer: NodeJS.Timeout | null
}

/** A call waiting for its answer; `kind` says which answer resolves it (`Single` or `Batch`). */
export type PendingCall<Single, Batch> =
  | CallState & { readonly kind: typeof kCallSingle, readonly resolve: (value: Single) => void }
  | CallState & { readonly kind: typeof kCallBatch, readonly resolve: (value: Batch) => void }

/** Ids are uint32 (the schema's); wrapping skips ids still in use. */
const kMaxId = 0xFFFFFFFF

export class PendingCalls<Single, Batch> {
  private readonly calls = new Map<number, PendingCall<Single, Batch>>()
  private nextId = 1

  constructor () {
    this.onTimeout = this.onTimeout.bind(this)
  }

  get size (): number { return this.calls.size }

  /** Registers a call and starts its timer; returns the id to send. */
  add (kind: typeof kCallSingle, timeoutMs: number, resolve: (value: Single) => void, reject: (err: Error) => void): number
  add (kind: typeof kCallBatch, timeoutMs: number, resolve: (value: Batch) => void, reject: (err: Error) => void): number
  add (kind: CallKind, timeoutMs: number, resolve: ((value: Single) => void) | ((value: Batch) => void), reject: (err: Error) => void): number {
    let id = this.nextId
    while (this.calls.has(id)) id = id === kMaxId ? 0 : id + 1
    this.nextId = id === kMaxId ? 0 : id + 1
    // The overloads pair `kind` with its answer type; the implementation signature cannot.
    const call = { kind, resolve, reject, timeoutMs, timer: null } as PendingCall<Single, Batch>
    call.timer = setTimeout(this.onTimeout, timeoutMs, id)
    this.calls.set(id, call)
    return id
  }

  /** Removes the call for `id` (its answer arrived); undefined when it already timed out. */
  take (id: number): PendingCall<Single, Batch> | undefined {
    const call = this.calls.get(id)
    if (call === undefined) return undefined
    this.calls.delete(id)
    if (call.timer !== null) clearTimeout(call.timer)
    return call
  }

  /** Rejects `id` now (its send failed). */
  fail (id: number, err: Error): void {
    this.take(id)?.reject(err)
  }

  /** Rejects every pending call with `err` (the connection dropped, or the client closed). */
  failAll (err: PredictionClientError): void {
    if (this.calls.size === 0) return
    const calls = [...this.calls.values()]
    this.calls.clear()
    for (const call of calls) {
      if (call.timer !== null) clearTimeout(call.timer)
      call.reject(err)
    }
  }

  private onTimeout (id: number): void {
    const call = this.calls.get(id)
    if (call === undefined) return
    call.timer = null
    this.calls.delete(id)
    call.reject(new ClientTimeoutError(call.timeoutMs))
  }
}
