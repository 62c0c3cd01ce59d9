/**
 * One /ws connection: reads each frame, submits its request(s), and is the PredictionSink of
 * every request read from it. The work is split by job:
 *
 *   this file          frame dispatch: read -> validate -> admit, refusals answered at once
 *   ws-slots.ts        the table of requests in flight (tag = slot)
 *   ws-batches.ts      batch frames being aggregated (a BatchTracker each)
 *   ws-send-queue.ts   the answers, encoded and sent together in one corked microtask
 *
 * The frame's format (binary FlatBuffers or JSON text) is chosen once, by the caller, from the
 * frame type; from there on it is an index into the shared readers and encoders.
 */
import type { WebSocket } from 'uWebSockets.js'
import type { PendingRequest, PredictionSink } from '../../batching/pending-request.js'
import { kFrameInvalid, kFrameRequest } from '../../protocol/messages.js'
import { wireOf } from '../../protocol/wire-codes.js'
import { kFormatBinary, kFormatText, type FormatIndex, type FrameReader } from '../../protocol/ws-formats.js'
import { kSubmitted, type SubmitResult } from '../../service/prediction-service.js'
import type { BatchTracker } from '../batch-tracker.js'
import { BatchFrames } from './ws-batches.js'
import type { WsShared } from './ws-context.js'
import { SendQueue, sendOrClose } from './ws-send-queue.js'
import { SlotTable } from './ws-slots.js'

/** What uWS keeps as the socket's user data (it copies the object's own properties at upgrade). */
export interface WsUserData {
  readonly conn: WsConnection
}

const kNoLoc: readonly string[] = Object.freeze([])
/** `["requests", i]`, built once per index on first use. */
const kItemLocs: Array<readonly (string | number)[]> = []
function itemLoc (i: number): readonly (string | number)[] {
  return kItemLocs[i] ??= Object.freeze(['requests', i])
}

export class WsConnection implements PredictionSink {
  ws: WebSocket<WsUserData> | null = null
  /** Format of the hello: JSON when the client asked at upgrade (`/ws?format=json`). */
  readonly helloFormat: FormatIndex
  closed = false
  private readonly shared: WsShared
  private readonly slots: SlotTable
  private readonly frames = new BatchFrames()
  private readonly queue: SendQueue

  constructor (shared: WsShared, helloJson: boolean) {
    this.shared = shared
    this.helloFormat = helloJson ? kFormatText : kFormatBinary
    this.slots = new SlotTable(shared.options.maxInFlight)
    this.queue = new SendQueue(this, shared, this.slots, this.frames)
  }

  /** Requests (batch items included) admitted and not yet answered. */
  get inFlight (): number { return this.slots.inFlight }

  /** A frame; `bytes` views the uWS buffer, valid only until the message callback returns. */
  onFrame (format: FormatIndex, bytes: Uint8Array, startMs: number): void {
    const s = this.shared
    const reader = s.formats[format].reader
    const kind = reader.open(bytes, s.options.maxBatchRequests)
    if (kind === kFrameInvalid) {
      s.outcomes.rejected(reader.errorCode, reader.error, reader.issues)
      this.refuse(format, reader.id, reader.idKnown)
      return
    }
    if (this.throttled()) {
      s.outcomes.rejected('ERR_OVERLOADED', s.backpressureMessage)
      this.refuse(format, reader.id, true)
      return
    }
    if (kind === kFrameRequest) this.submitSingle(format, reader, startMs)
    else this.submitBatch(format, reader, startMs)
  }

  /** Called by the batcher once per admitted request; `request` is recycled when this returns. */
  complete (request: PendingRequest): void {
    const slots = this.slots
    const outcomes = this.shared.outcomes
    const slot = request.tag
    const b = slots.batchOf[slot]!
    if (b < 0) {
      slots.store(slot, request, outcomes.completed(request))
      this.queue.push(slot)
      return
    }
    const i = slots.itemOf[slot]!
    slots.release(slot)
    if (this.frames.get(b).complete(i, request, outcomes)) this.queue.push(~b)
  }

  /** uWS closed the socket (any reason): nothing may be sent any more; answers still due are dropped. */
  onClose (): void {
    this.closed = true
    this.ws = null
  }

  /** Sends the hello in the format the client asked for at upgrade. */
  sendHello (): void {
    const encoder = this.shared.formats[this.helloFormat].encoder
    this.ws!.send(encoder.hello(this.shared.helloInfo()), encoder.binary)
  }

  /** The frame's handling threw (a bug): answered INTERNAL without an id, the connection stays open. */
  refuseInternal (format: FormatIndex): void {
    this.shared.outcomes.rejected('ERR_INTERNAL')
    this.refuse(format, 0, false)
  }

  private throttled (): boolean {
    return this.ws !== null && this.ws.getBufferedAmount() > this.shared.options.softBackpressureBytes
  }

  private submitSingle (format: FormatIndex, reader: FrameReader, startMs: number): void {
    const s = this.shared
    const id = reader.id
    const issues = reader.decode(-1, s.snapshot, s.decoded, s.options, Date.now(), kNoLoc)
    if (issues.length > 0) {
      s.outcomes.invalid(issues)
      this.refuse(format, id, true)
      return
    }
    const slot = this.slots.acquire()
    if (slot < 0) {
      s.outcomes.rejected('ERR_OVERLOADED', s.tooManyInFlightMessage)
      this.refuse(format, id, true)
      return
    }
    this.slots.assign(slot, id, format, startMs, -1, 0)
    const result = s.service.submit(s.decoded.symbol, s.snapshot, s.decoded.deadlineMs, this, slot)
    if (result === kSubmitted) return
    this.slots.release(slot)
    s.outcomes.refused(result, kNoLoc)
    this.refuse(format, id, true)
  }

  private submitBatch (format: FormatIndex, reader: FrameReader, startMs: number): void {
    const outcomes = this.shared.outcomes
    const n = reader.length
    const b = this.frames.open(reader.id, n, format, startMs)
    const batch = this.frames.get(b)
    const now = Date.now()
    let i = 0
    try {
      for (; i < n; i++) this.submitBatchItem(reader, batch, b, format, i, now)
    } catch (err) {
      // A bug, not the client's (the server logs it and also answers INTERNAL without an id). The
      // items not yet placed are answered INTERNAL inside the frame, so the frame is still answered
      // once its submitted items complete, and its slot returns to the free list.
      for (let k = i; k < n; k++) {
        outcomes.rejected('ERR_INTERNAL')
        batch.failWith(k, outcomes)
      }
      throw err
    } finally {
      if (batch.settle()) this.queue.push(~b)
    }
  }

  /** Validates and submits item i of a batch frame; answers it inside the frame when refused. */
  private submitBatchItem (reader: FrameReader, batch: BatchTracker, b: number, format: FormatIndex, i: number, now: number): void {
    const s = this.shared
    const outcomes = s.outcomes
    const loc = itemLoc(i)
    const issues = reader.decode(i, s.snapshot, s.decoded, s.options, now, loc)
    batch.itemIds[i] = reader.decodedId
    if (issues.length > 0) {
      outcomes.invalid(issues)
      batch.failWith(i, outcomes)
      return
    }
    const slot = this.slots.acquire()
    if (slot < 0) {
      outcomes.rejected('ERR_OVERLOADED', s.tooManyInFlightMessage)
      batch.failWith(i, outcomes)
      return
    }
    this.slots.assign(slot, batch.itemIds[i]!, format, batch.startMs, b, i)
    // Counted before submitting: a request can complete synchronously (expired at dispatch).
    batch.expect()
    let result: SubmitResult
    try {
      result = s.service.submit(s.decoded.symbol, s.snapshot, s.decoded.deadlineMs, this, slot)
    } catch (err) {
      // submit throws only before it admits the request (commit is its last step): undo the count.
      batch.unexpect()
      this.slots.release(slot)
      throw err
    }
    if (result === kSubmitted) return
    batch.unexpect()
    this.slots.release(slot)
    outcomes.refused(result, loc)
    batch.failWith(i, outcomes)
  }

  /**
   * Answers a frame or request at once with the refusal `outcomes` last described (inside the
   * message callback: uWS has the socket corked).
   */
  private refuse (format: FormatIndex, id: number, idKnown: boolean): void {
    const ws = this.ws
    if (ws === null) return
    const { code, message, issues } = this.shared.outcomes
    const encoder = this.shared.formats[format].encoder
    const detail = issues === null ? null : JSON.stringify(issues)
    sendOrClose(ws, encoder.error(id, idKnown, wireOf(code), message, detail), encoder.binary, this.shared.log)
  }
}
