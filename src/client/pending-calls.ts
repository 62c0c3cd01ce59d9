/**
 * Calls waiting for an answer on the WebSocket, by the id sent with them. Each has its own
 * timeout; on a disconnect every one of them is failed at once (never left hanging).
 */
import { ClientTimeoutError, type PredictionClientError } from './errors.js'

export const kCallSingle = 0
export const kCallBatch = 1
export type CallKind = typeof kCallSingle | typeof kCallBatch

export interface PendingCall {
  readonly kind: CallKind
  readonly resolve: (value: any) => void
  readonly reject: (err: Error) => void
  readonly timeoutMs: number
  timer: NodeJS.Timeout | null
}

/** Ids are uint32 (the schema's); wrapping skips ids still in use. */
const kMaxId = 0xFFFFFFFF

export class PendingCalls {
  private readonly calls = new Map<number, PendingCall>()
  private nextId = 1

  constructor () {
    this.onTimeout = this.onTimeout.bind(this)
  }

  get size (): number { return this.calls.size }

  /** Registers a call and starts its timer; returns the id to send. */
  add (kind: CallKind, timeoutMs: number, resolve: (value: any) => void, reject: (err: Error) => void): number {
    let id = this.nextId
    while (this.calls.has(id)) id = id === kMaxId ? 0 : id + 1
    this.nextId = id === kMaxId ? 0 : id + 1
    const call: PendingCall = { kind, resolve, reject, timeoutMs, timer: null }
    call.timer = setTimeout(this.onTimeout, timeoutMs, id)
    this.calls.set(id, call)
    return id
  }

  /** Removes the call for `id` (its answer arrived); undefined when it already timed out. */
  take (id: number): PendingCall | undefined {
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
