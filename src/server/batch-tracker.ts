/**
 * One batch (a /predict/batch body or a /ws batch frame) from its read to its answer: the
 * outcome of every item, kept until the last one is known, and the count of items still due.
 * Both transports use it; the protocol's encoders read it (`HttpBatchSource`,
 * `BatchResultSource`). Reused: `reset` for the next batch, `release` once it is answered.
 *
 * Counting. `pending` = items submitted and not yet completed, plus 1 held by the read loop, so
 * an item answered during its own submit (an expired deadline, a failure) cannot finish the
 * batch before every item has been placed. `expect` before each submit (a request can complete
 * synchronously), `unexpect` when the submit did not admit it; `settle` for each completion and
 * once at the end of the read loop: it is true exactly once, when the batch is complete.
 */
import { performance } from 'node:perf_hooks'
import type { Component, PendingRequest } from '../batching/pending-request.js'
import type { ErrorCode, WireCode } from '../errors.js'
import type { HttpBatchSource } from '../protocol/json-answer.js'
import { messageOf, wireOf } from '../protocol/wire-codes.js'
import type { Outcomes } from './outcome.js'

export class BatchTracker implements HttpBatchSource {
  /** The frame's id (/ws); 0 over HTTP. */
  id = 0
  size = 0
  pending = 0
  /** performance.now() when the batch was read: its items' `latency_ms` count from here. */
  startMs = 0
  itemIds = new Uint32Array(0)
  failed = new Uint8Array(0)
  probability = new Float64Array(0)
  latencyMs = new Float64Array(0)
  symbols: string[] = []
  modelVersions: string[] = []
  modelVersionsJson: string[] = []
  /**
   * Item i's model-set members (PendingRequest.components, fresh per answer, so kept by
   * reference); null for a single model's answer, which stores one null and allocates nothing.
   */
  components: Array<readonly Component[] | null> = []
  codes: ErrorCode[] = []
  wireCodes: WireCode[] = []
  messages: string[] = []
  details: Array<string | null> = []

  reset (id: number, size: number, startMs: number): void {
    if (this.itemIds.length < size) {
      const capacity = Math.max(16, 1 << (32 - Math.clz32(size - 1)))
      this.itemIds = new Uint32Array(capacity)
      this.failed = new Uint8Array(capacity)
      this.probability = new Float64Array(capacity)
      this.latencyMs = new Float64Array(capacity)
    }
    this.id = id
    this.size = size
    this.pending = 1
    this.startMs = startMs
  }

  expect (): void { this.pending++ }
  unexpect (): void { this.pending-- }
  /** One item completed, or the read loop ended: true when that was the last one due. */
  settle (): boolean { return --this.pending === 0 }

  /** Item i was refused: its code, /ws message and issues JSON (null when none). */
  fail (i: number, code: ErrorCode, message: string, detailJson: string | null): void {
    this.failed[i] = 1
    this.latencyMs[i] = 0
    this.codes[i] = code
    this.wireCodes[i] = wireOf(code)
    this.messages[i] = message
    this.details[i] = detailJson
  }

  /** Item i was refused as `outcomes` last described (Outcomes.rejected, invalid, refused). */
  failWith (i: number, outcomes: Outcomes): void {
    this.fail(i, outcomes.code, outcomes.message, outcomes.issues === null ? null : JSON.stringify(outcomes.issues))
  }

  /**
   * The batcher completed item i (`request` is recycled when the caller returns: copied here).
   * True when the batch is now complete.
   */
  complete (i: number, request: PendingRequest, outcomes: Outcomes): boolean {
    const code = outcomes.completed(request)
    if (code === null) {
      this.failed[i] = 0
      this.probability[i] = request.probability
      this.latencyMs[i] = performance.now() - this.startMs
      this.symbols[i] = request.symbol
      this.modelVersions[i] = request.modelVersion
      this.modelVersionsJson[i] = request.modelVersionJson
      this.components[i] = request.components
    } else {
      this.fail(i, code, messageOf(code), null)
    }
    return this.settle()
  }

  /** Drops references to strings and components of this batch (details can be long) once it is answered. */
  release (): void {
    for (let i = 0; i < this.size; i++) {
      this.details[i] = null
      this.components[i] = null
    }
    this.size = 0
  }
}
