/**
 * One /ws connection: the PredictionSink for every request read from it, and the table of its
 * requests in flight.
 *
 * Requests are admitted with `tag` = a slot of this table, so an answer finds its client id and
 * start time by index, without a Map or a closure per request:
 *
 *   slot:      0     1     2     3    ...  capacity-1     (grows by doubling up to maxInFlight)
 *   ids:      [17 ][ 18 ][ 4  ][    ] ...                  client id of the request (or batch item)
 *   batchOf:  [-1 ][ 0  ][ 0  ][    ]                      -1: a single request; else its BatchFrame
 *   itemOf:   [ - ][ 0  ][ 1  ][    ]                      position inside that batch
 *   free:     [3, 4, ...] stack of unused slots (freeTop)
 *
 * Answers are not written from inside the batcher's loop one by one: `complete` records the
 * outcome and queues the slot on `ready`; one microtask per connection and tick then encodes
 * and sends everything ready inside a single `ws.cork` (one syscall), using the shared Builder
 * for each message in turn (uWS copies on send, so the Builder is reused at once).
 */
import { performance } from 'node:perf_hooks'
import type { WebSocket } from 'uWebSockets.js'
import {
  failureCode, kStatusOk, type PendingRequest, type PredictionSink,
} from '../../batching/pending-request.js'
import { kErrorTable, type ErrorCode, type ValidationIssue, type WireCode } from '../../errors.js'
import type { BatchResultSource } from '../../protocol/fb-codec.js'
import { kFrameInvalid, kFrameRequest } from '../../protocol/fb-codec.js'
import { decodeJsonRequest } from '../../protocol/json-request.js'
import { kIssue } from '../../protocol/request-fields.js'
import { kRejectCode, kRejectStale, kSubmitted, type SubmitResult } from '../../service/prediction-service.js'
import { batchResultText, errorText, messageOf, predictionText } from './ws-json-codec.js'
import type { WsServer } from './ws-server.js'

/** What uWS keeps as the socket's user data (it copies the object's own properties at upgrade). */
export interface WsUserData {
  readonly conn: WsConnection
}


const kInitialSlots = 64
/** `ws.send` result: 1 sent, 0 buffered (backpressure), 2 dropped (over maxBackpressure). */
const kSendDropped = 2
const kNoLoc: readonly string[] = Object.freeze([])
/** `["requests", i]`, built once per index on first use. */
const kItemLocs: Array<readonly (string | number)[]> = []
function itemLoc (i: number): readonly (string | number)[] {
  return kItemLocs[i] ??= Object.freeze(['requests', i])
}

function wireOf (code: ErrorCode): WireCode { return kErrorTable[code].wireCode ?? 'INTERNAL' }

function issuesMessage (issues: readonly ValidationIssue[]): string {
  const first = issues[0]!
  return first.loc.length > 0 ? `${first.loc.join('.')}: ${first.msg}` : first.msg
}

/** The outcome of every item of one batch frame, kept until the last one is known. */
class BatchFrame implements BatchResultSource {
  id = 0
  size = 0
  /** Items submitted and not yet completed, plus 1 while the frame is still being read. */
  pending = 0
  text = false
  startMs = 0
  itemIds = new Uint32Array(0)
  failed = new Uint8Array(0)
  probability = new Float64Array(0)
  latencyMs = new Float64Array(0)
  symbols: string[] = []
  modelVersions: string[] = []
  modelVersionsJson: string[] = []
  wireCodes: WireCode[] = []
  messages: string[] = []
  details: Array<string | null> = []

  reset (id: number, size: number, text: boolean, startMs: number): void {
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
    this.text = text
    this.startMs = startMs
  }

  fail (i: number, code: ErrorCode, message: string, detailJson: string | null): void {
    this.failed[i] = 1
    this.wireCodes[i] = wireOf(code)
    this.messages[i] = message
    this.details[i] = detailJson
  }

  /** Drops references to strings of this batch (details can be long) once it is answered. */
  release (): void {
    for (let i = 0; i < this.size; i++) this.details[i] = null
    this.size = 0
  }
}

export class WsConnection implements PredictionSink {
  ws: WebSocket<WsUserData> | null = null
  /** The client asked for JSON at upgrade (`/ws?format=json`): the hello goes as a text frame. */
  helloJson = false
  closed = false
  inFlight = 0
  private readonly server: WsServer
  private capacity = 0
  private ids = new Uint32Array(0)
  private startMs = new Float64Array(0)
  private text = new Uint8Array(0)
  private batchOf = new Int32Array(0)
  private itemOf = new Int32Array(0)
  private failed = new Uint8Array(0)
  private probability = new Float64Array(0)
  private readonly symbols: string[] = []
  private readonly versions: string[] = []
  private readonly versionsJson: string[] = []
  private readonly codes: ErrorCode[] = []
  private free = new Int32Array(0)
  private freeTop = 0
  private readonly batches: BatchFrame[] = []
  private readonly freeBatches: number[] = []
  /** Answers to send: a slot (>= 0) or `~batchIndex` (< 0). */
  private readonly ready: number[] = []
  private flushScheduled = false

  constructor (server: WsServer) {
    this.server = server
    this.flush = this.flush.bind(this)
    this.sendReady = this.sendReady.bind(this)
    this.grow()
  }

  /** A binary frame; `bytes` views the uWS buffer, valid only until the message callback returns. */
  onBinary (bytes: Uint8Array, startMs: number): void {
    const s = this.server
    const reader = s.fbReader
    const kind = reader.open(bytes, s.options.maxBatchRequests)
    if (kind === kFrameInvalid) {
      this.refuse(false, reader.id, reader.idKnown, reader.issues === null ? 'ERR_PROTOCOL' : 'ERR_VALIDATION', reader.error, reader.issues)
      return
    }
    if (this.throttled()) {
      this.refuse(false, reader.id, true, 'ERR_OVERLOADED', s.backpressureMessage, null)
      return
    }
    if (kind === kFrameRequest) {
      const issues = reader.decode(-1, s.snapshot, s.decoded, s.options, Date.now(), kNoLoc)
      this.submitSingle(false, reader.id, issues, startMs)
    } else {
      this.submitBatch(false, reader.id, reader.length, startMs)
    }
  }

  /** A text frame (JSON); same lifetime rule as `onBinary`. */
  onText (bytes: Uint8Array, startMs: number): void {
    const s = this.server
    const reader = s.jsonReader
    const kind = reader.open(bytes, s.options.maxBatchRequests)
    if (kind === kFrameInvalid) {
      this.refuse(true, reader.id, reader.idKnown, reader.errorCode, reader.error, reader.issues)
      return
    }
    if (this.throttled()) {
      this.refuse(true, reader.id, true, 'ERR_OVERLOADED', s.backpressureMessage, null)
      return
    }
    if (kind === kFrameRequest) {
      const issues = decodeJsonRequest(reader.request, s.snapshot, s.decoded, s.options, Date.now(), kNoLoc)
      this.submitSingle(true, reader.id, issues, startMs)
    } else {
      this.submitBatch(true, reader.id, reader.requests.length, startMs)
    }
  }

  /** Called by the batcher once per admitted request; `request` is recycled when this returns. */
  complete (request: PendingRequest): void {
    const slot = request.tag
    const ok = request.status === kStatusOk
    const metrics = this.server.metrics
    let code: ErrorCode = 'ERR_INFERENCE'
    if (ok) metrics.recordPrediction(request.probability)
    else {
      code = failureCode(request.status)
      metrics.recordError(code)
    }
    const b = this.batchOf[slot]!
    if (b < 0) {
      this.failed[slot] = ok ? 0 : 1
      this.probability[slot] = request.probability
      this.symbols[slot] = request.symbol
      this.versions[slot] = request.modelVersion
      this.versionsJson[slot] = request.modelVersionJson
      this.codes[slot] = code
      this.queue(slot)
      return
    }
    const batch = this.batches[b]!
    const i = this.itemOf[slot]!
    this.releaseSlot(slot)
    batch.latencyMs[i] = performance.now() - batch.startMs
    if (ok) {
      batch.failed[i] = 0
      batch.probability[i] = request.probability
      batch.symbols[i] = request.symbol
      batch.modelVersions[i] = request.modelVersion
      batch.modelVersionsJson[i] = request.modelVersionJson
    } else {
      batch.fail(i, code, messageOf(code), null)
    }
    if (--batch.pending === 0) this.queue(~b)
  }

  /** uWS closed the socket (any reason): nothing may be sent any more; answers still due are dropped. */
  onClose (): void {
    this.closed = true
    this.ws = null
  }

  /** Sends the hello (binary unless the client asked for JSON at upgrade). */
  sendHello (): void {
    const ws = this.ws!
    if (this.helloJson) ws.send(this.server.helloText(), false)
    else ws.send(this.server.helloBytes(), true)
  }

  /** The frame's handling threw (a bug): answered INTERNAL without an id, the connection stays open. */
  refuseInternal (text: boolean): void {
    this.refuse(text, 0, false, 'ERR_INTERNAL', messageOf('ERR_INTERNAL'), null)
  }

  private throttled (): boolean {
    return this.ws !== null && this.ws.getBufferedAmount() > this.server.options.softBackpressureBytes
  }

  private submitSingle (text: boolean, id: number, issues: readonly ValidationIssue[], startMs: number): void {
    const s = this.server
    if (issues.length > 0) {
      this.refuse(text, id, true, 'ERR_VALIDATION', issuesMessage(issues), issues)
      return
    }
    const slot = this.acquireSlot()
    if (slot < 0) {
      this.refuse(text, id, true, 'ERR_OVERLOADED', s.tooManyInFlightMessage, null)
      return
    }
    this.ids[slot] = id
    this.startMs[slot] = startMs
    this.text[slot] = text ? 1 : 0
    this.batchOf[slot] = -1
    const result = s.service.submit(s.decoded.symbol, s.snapshot, s.decoded.deadlineMs, this, slot)
    if (result === kSubmitted) return
    this.releaseSlot(slot)
    if (result === kRejectStale) {
      this.refuse(text, id, true, 'ERR_VALIDATION', kIssue.staleTimestamp.msg, [{ loc: ['timestamp_ms'], ...kIssue.staleTimestamp }])
      return
    }
    const code = kRejectCode[result]
    this.refuse(text, id, true, code, messageOf(code), null)
  }

  private submitBatch (text: boolean, id: number, n: number, startMs: number): void {
    const s = this.server
    const b = this.freeBatches.length > 0 ? this.freeBatches.pop()! : this.batches.push(new BatchFrame()) - 1
    const batch = this.batches[b]!
    batch.reset(id, n, text, startMs)
    const now = Date.now()
    let i = 0
    try {
      for (; i < n; i++) this.submitBatchItem(batch, b, i, now)
    } catch (err) {
      // A bug, not the client's (the server logs it and also answers INTERNAL without an id). The
      // items not yet placed are answered INTERNAL inside the frame, so the frame is still answered
      // once its submitted items complete, and its slot returns to the free list.
      const message = messageOf('ERR_INTERNAL')
      for (let k = i; k < n; k++) {
        s.metrics.recordError('ERR_INTERNAL')
        batch.fail(k, 'ERR_INTERNAL', message, null)
      }
      throw err
    } finally {
      if (--batch.pending === 0) this.queue(~b)
    }
  }

  /** Validates and submits item i of a batch frame; answers it inside the frame when refused. */
  private submitBatchItem (batch: BatchFrame, b: number, i: number, now: number): void {
    const s = this.server
    const metrics = s.metrics
    const text = batch.text
    const loc = itemLoc(i)
    let issues: readonly ValidationIssue[]
    if (text) {
      const itemId = s.jsonReader.itemId(i)
      issues = itemId < 0
        ? [{ loc: [...loc, 'id'], ...kIssue.notInteger }]
        : decodeJsonRequest(s.jsonReader.requests[i], s.snapshot, s.decoded, s.options, now, loc)
      batch.itemIds[i] = itemId < 0 ? 0 : itemId
    } else {
      issues = s.fbReader.decode(i, s.snapshot, s.decoded, s.options, now, loc)
      batch.itemIds[i] = s.fbReader.itemId
    }
    batch.latencyMs[i] = 0
    if (issues.length > 0) {
      metrics.recordError('ERR_VALIDATION')
      batch.fail(i, 'ERR_VALIDATION', issuesMessage(issues), JSON.stringify(issues))
      return
    }
    const slot = this.acquireSlot()
    if (slot < 0) {
      metrics.recordError('ERR_OVERLOADED')
      batch.fail(i, 'ERR_OVERLOADED', s.tooManyInFlightMessage, null)
      return
    }
    this.ids[slot] = batch.itemIds[i]!
    this.startMs[slot] = batch.startMs
    this.text[slot] = text ? 1 : 0
    this.batchOf[slot] = b
    this.itemOf[slot] = i
    // Counted before submitting: a request can complete synchronously (expired at dispatch).
    batch.pending++
    let result: SubmitResult
    try {
      result = s.service.submit(s.decoded.symbol, s.snapshot, s.decoded.deadlineMs, this, slot)
    } catch (err) {
      // submit throws only before it admits the request (commit is its last step): undo the count.
      batch.pending--
      this.releaseSlot(slot)
      throw err
    }
    if (result === kSubmitted) return
    batch.pending--
    this.releaseSlot(slot)
    if (result === kRejectStale) {
      metrics.recordError('ERR_VALIDATION')
      batch.fail(i, 'ERR_VALIDATION', kIssue.staleTimestamp.msg, JSON.stringify([{ loc: [...loc, 'timestamp_ms'], ...kIssue.staleTimestamp }]))
    } else {
      const code = kRejectCode[result]
      metrics.recordError(code)
      batch.fail(i, code, messageOf(code), null)
    }
  }

  /** Answers a frame or request at once with an error (inside the message callback: uWS has the socket corked). */
  private refuse (text: boolean, id: number, idKnown: boolean, code: ErrorCode, message: string, issues: readonly ValidationIssue[] | null): void {
    this.server.metrics.recordError(code)
    const ws = this.ws
    if (ws === null) return
    const detail = issues === null ? null : JSON.stringify(issues)
    const status = text
      ? ws.send(errorText(id, idKnown, wireOf(code), message, detail), false)
      : ws.send(this.server.fbWriter.error(id, idKnown, wireOf(code), message, detail), true)
    if (status === kSendDropped) this.closeOverLimit(ws)
  }

  /**
   * uWS dropped a send: more than maxBackpressure bytes wait for this client. closeOnBackpressureLimit
   * only stops uWS reading from the socket (it stays open, holding its buffer, until the idle
   * timeout), so the connection is closed here, at once, freeing the buffer. The client sees 1006.
   */
  private closeOverLimit (ws: WebSocket<WsUserData>): void {
    this.server.log.info({ event: 'ws_backpressure_close', buffered_bytes: ws.getBufferedAmount() }, 'Closing a WebSocket that does not read its answers')
    ws.close()
  }

  private queue (entry: number): void {
    this.ready.push(entry)
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(this.flush)
  }

  private flush (): void {
    this.flushScheduled = false
    if (this.ws !== null) this.ws.cork(this.sendReady)
    else this.sendReady()
  }

  /** Sends every ready answer (inside `ws.cork` while the socket is open) and frees its slot or batch. */
  private sendReady (): void {
    const ready = this.ready
    const { fbWriter: writer, metrics } = this.server
    for (let k = 0; k < ready.length; k++) {
      const entry = ready[k]!
      // A dropped send closes the socket here, synchronously (onClose sets ws to null): re-read it each time.
      const ws = this.ws
      if (entry >= 0) {
        if (ws !== null) {
          const id = this.ids[entry]!
          const text = this.text[entry] === 1
          let status: number
          if (this.failed[entry] === 0) {
            const latencyMs = performance.now() - this.startMs[entry]!
            status = text
              ? ws.send(predictionText(id, this.probability[entry]!, this.versionsJson[entry]!, this.symbols[entry]!, latencyMs), false)
              : ws.send(writer.prediction(id, this.probability[entry]!, this.versions[entry]!, this.symbols[entry]!, latencyMs), true)
            metrics.recordRequest(Math.round((performance.now() - this.startMs[entry]!) * 1000))
          } else {
            const code = this.codes[entry]!
            status = text
              ? ws.send(errorText(id, true, wireOf(code), messageOf(code), null), false)
              : ws.send(writer.error(id, true, wireOf(code), messageOf(code), null), true)
          }
          if (status === kSendDropped) this.closeOverLimit(ws)
        }
        this.releaseSlot(entry)
      } else {
        const b = ~entry
        const batch = this.batches[b]!
        if (ws !== null) {
          const status = batch.text
            ? ws.send(batchResultText(batch, batch.modelVersionsJson), false)
            : ws.send(writer.batchResult(batch), true)
          metrics.recordRequest(Math.round((performance.now() - batch.startMs) * 1000))
          if (status === kSendDropped) this.closeOverLimit(ws)
        }
        batch.release()
        this.freeBatches.push(b)
      }
    }
    ready.length = 0
  }

  private acquireSlot (): number {
    if (this.freeTop === 0 && !this.grow()) return -1
    this.inFlight++
    return this.free[--this.freeTop]!
  }

  private releaseSlot (slot: number): void {
    this.inFlight--
    this.free[this.freeTop++] = slot
  }

  /** Doubles the slot table (all slots are in use), up to maxInFlight; false when at the limit. */
  private grow (): boolean {
    const old = this.capacity
    const max = this.server.options.maxInFlight
    if (old >= max) return false
    const capacity = old === 0 ? Math.min(kInitialSlots, max) : Math.min(old * 2, max)
    this.ids = copyInto(new Uint32Array(capacity), this.ids)
    this.startMs = copyInto(new Float64Array(capacity), this.startMs)
    this.text = copyInto(new Uint8Array(capacity), this.text)
    this.batchOf = copyInto(new Int32Array(capacity), this.batchOf)
    this.itemOf = copyInto(new Int32Array(capacity), this.itemOf)
    this.failed = copyInto(new Uint8Array(capacity), this.failed)
    this.probability = copyInto(new Float64Array(capacity), this.probability)
    const free = new Int32Array(capacity)
    free.set(this.free.subarray(0, this.freeTop))
    for (let slot = capacity - 1; slot >= old; slot--) free[this.freeTop++] = slot
    this.free = free
    this.capacity = capacity
    return true
  }
}

function copyInto<T extends Uint8Array | Uint32Array | Int32Array | Float64Array> (target: T, source: T): T {
  target.set(source as never)
  return target
}
