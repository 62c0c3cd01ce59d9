/**
 * The server's side of the binary WebSocket protocol (schemas/prediction.fbs): reading request
 * frames into the shared MarketSnapshot, and writing answers with one reused Builder.
 *
 * Reading. The flatbuffers JavaScript runtime has no verifier, and its accessors never throw on a
 * bad offset: they read `undefined` bytes as 0 and would hand back a plausible-looking request
 * built from garbage, or a vector length of two billion. So every table, string and vector this
 * reader touches is bounds-checked first (`tableSize`, `fieldsFit`, `stringFits`); a frame that
 * fails is refused as INVALID_ARGUMENT with the id when it could be read. Everything happens
 * synchronously on a view of the uWS message buffer, which is neutered when the callback returns.
 *
 * Writing. `FbWriter` owns one Builder; each method clears it, builds one Message, and returns
 * `builder.asUint8Array()`, a view of the builder's buffer that stays valid only until the next
 * call, so the caller sends it (uWS copies it) before encoding the next answer.
 */
import * as flatbuffers from 'flatbuffers'
import type { ErrorCode, ValidationIssue, WireCode } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { isLong, round3, round6, wireConfidence } from './answer-values.js'
import { clearDecoded, type DecodedRequest, type DecodeLimits } from './json-request.js'
import {
  kFileIdentifier, kFrameBatch, kFrameInvalid, kFrameRequest, kProtocolVersion, type BatchResultSource,
  type ComponentSource, type ComponentStatus as ComponentStatusName, type FrameKind, type HelloInfo,
} from './messages.js'
import {
  batchLengthIssue, batchLengthMessage, kIssue, kNumericFields, kSymbolPattern, numericIssue, timestampIssue,
} from './request-fields.js'
import { kWireToFb } from './wire-codes.js'
import {
  BatchItem, BatchResult, Body, Component, ComponentStatus, Direction, ErrorResponse, Hello, Message, PredictRequest,
  Prediction,
} from './generated/prediction_generated.js'

// Where they were first defined: tests and tools import them from here.
export { kFileIdentifier, kFrameBatch, kFrameInvalid, kFrameRequest, kProtocolVersion, type BatchResultSource, type FrameKind, type HelloInfo }

// ---------------------------------------------------------------------------------------------
// Bounds checks (a minimal verifier for the tables a client may send)
// ---------------------------------------------------------------------------------------------

/** Byte size of each field, in schema order: what must fit inside the table for the slot to be read. */
const kMessageFields: readonly number[] = [1, 4]
const kRequestFields: readonly number[] = [4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 8, 4]
const kBatchFields: readonly number[] = [4, 4]
/** Prediction, BatchResult and ErrorResponse start with `id: uint32`: enough to echo it. */
const kIdFirstFields: readonly number[] = [4]
const kSymbolSlot = 4 + 2 * 14
const kRequestsSlot = 6

/** Size of the table at `pos` (from its vtable) when table and vtable lie inside the buffer, else -1. */
function tableSize (bb: flatbuffers.ByteBuffer, pos: number, len: number): number {
  if (pos < 4 || pos + 4 > len) return -1
  const vt = pos - bb.readInt32(pos)
  if (vt < 0 || vt + 4 > len) return -1
  const vtSize = bb.readUint16(vt)
  const tSize = bb.readUint16(vt + 2)
  if (vtSize < 4 || (vtSize & 1) !== 0 || vt + vtSize > len || tSize < 4 || pos + tSize > len) return -1
  return tSize
}

/** Every known field the vtable declares lies inside the table (fields beyond `sizes` are newer and ignored). */
function fieldsFit (bb: flatbuffers.ByteBuffer, pos: number, tSize: number, sizes: readonly number[]): boolean {
  const vt = pos - bb.readInt32(pos)
  const declared = (bb.readUint16(vt) - 4) >> 1
  const n = declared < sizes.length ? declared : sizes.length
  for (let i = 0; i < n; i++) {
    const off = bb.readUint16(vt + 4 + 2 * i)
    if (off !== 0 && (off < 4 || off + sizes[i]! > tSize)) return false
  }
  return true
}

/** The string referenced by the offset field at `slot` (absent is fine) lies inside the buffer. */
function stringFits (bb: flatbuffers.ByteBuffer, pos: number, slot: number, len: number): boolean {
  const off = bb.__offset(pos, slot)
  if (off === 0) return true
  const s = pos + off + bb.readUint32(pos + off)
  return s + 4 <= len && s + 4 + bb.readUint32(s) <= len
}

/** Position of the table referenced by the offset field at `slot`, or -1 when absent. */
function referencedTable (bb: flatbuffers.ByteBuffer, pos: number, slot: number): number {
  const off = bb.__offset(pos, slot)
  return off === 0 ? -1 : pos + off + bb.readUint32(pos + off)
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

type NumberGetter = (this: PredictRequest) => number | null
/**
 * The schema's accessor for each contract field, in the order of `kNumericFields`. The snapshot
 * keys and the generated method names coincide (bid_depth_5 -> bidDepth5), and the compiler
 * checks that they do: a renamed schema field breaks the build here.
 */
const kGetters: readonly NumberGetter[] = kNumericFields.map((f) => PredictRequest.prototype[f.key])

/** Byte -> allowed in a symbol ([A-Za-z0-9_-], request-fields.ts kSymbolPattern). */
const kSymbolByte = new Uint8Array(256)
for (let c = 0; c < 128; c++) kSymbolByte[c] = kSymbolPattern.test(String.fromCharCode(c)) ? 1 : 0

/**
 * The symbol as a string when its UTF-8 bytes match kSymbolPattern (1 to 32 of [A-Za-z0-9_-]),
 * else null. Checking the bytes and building the short ASCII string here spares each request a
 * TextDecoder call and a regex test (not measured on its own: no micro-benchmark covers it), with
 * the same result: any non-ASCII byte is outside the pattern anyway.
 */
function asciiSymbol (bytes: Uint8Array): string | null {
  const n = bytes.length
  if (n === 0 || n > 32) return null
  for (let i = 0; i < n; i++) if (kSymbolByte[bytes[i]!] !== 1) return null
  // One string from the (ASCII) bytes; apply takes the typed array as its argument list.
  return String.fromCharCode.apply(null, bytes as unknown as number[])
}

const kCorrupt = 'truncated or corrupt FlatBuffer'
const kCorruptIssue = { msg: 'truncated or corrupt FlatBuffer table', type: 'value_error.flatbuffers' } as const

/**
 * Reads one binary frame. Reused: `open` a frame, then `decode` its request (index -1) or each
 * batch item, all before the message callback returns. Fields describe the last `open`.
 */
export class FbFrameReader {
  /** The frame's request or batch id, meaningful when `idKnown`. */
  id = 0
  idKnown = false
  /** Why `open` returned kFrameInvalid. */
  error = ''
  /** FastAPI-shaped issues when the frame was refused for its content (batch too long). */
  issues: readonly ValidationIssue[] | null = null
  /** Registry code of the refusal, for the metrics: ERR_VALIDATION with issues, else ERR_PROTOCOL. */
  get errorCode (): ErrorCode { return this.issues === null ? 'ERR_PROTOCOL' : 'ERR_VALIDATION' }
  /** Requests in the batch frame. */
  length = 0
  /** The id of the request `decode` last read (0 when its table was corrupt). */
  itemId = 0
  /** Same as `itemId`, under the name both frame readers share (protocol/ws-formats.ts). */
  get decodedId (): number { return this.itemId }
  private bb = new flatbuffers.ByteBuffer(new Uint8Array(0))
  private len = 0
  private vector = 0
  private readonly message = new Message()
  private readonly request = new PredictRequest()

  /**
   * Times `open` or `decode` threw and the frame was refused as corrupt instead. The checks above
   * should make that impossible; the fuzz tests (test/fuzz) assert it stays 0, so a gap in them
   * is found there, while a client that finds one in production still gets INVALID_ARGUMENT.
   */
  faults = 0

  open (bytes: Uint8Array, maxBatchRequests: number): FrameKind {
    this.id = 0
    this.idKnown = false
    this.error = ''
    this.issues = null
    this.length = 0
    try {
      return this.read(bytes, maxBatchRequests)
    } catch (err) {
      // Whatever the frame is, it is the client's: INVALID_ARGUMENT, with the id if it was read.
      this.faults++
      this.issues = null
      this.length = 0
      return this.fail(`${kCorrupt} (${(err as Error)?.name ?? 'error'})`)
    }
  }

  private read (bytes: Uint8Array, maxBatchRequests: number): FrameKind {
    const len = bytes.length
    if (len < 12) return this.fail(`frame of ${len} bytes is too short for a FlatBuffers Message`)
    const bb = new flatbuffers.ByteBuffer(bytes)
    this.bb = bb
    this.len = len
    if (!Message.bufferHasIdentifier(bb)) return this.fail(`not a Message: the file identifier is not "${kFileIdentifier}"`)
    const root = bb.readUint32(0)
    const rootSize = tableSize(bb, root, len)
    if (rootSize < 0 || !fieldsFit(bb, root, rootSize, kMessageFields)) return this.fail(`${kCorrupt} (Message)`)
    this.message.__init(root, bb)
    const type = this.message.bodyType()
    const body = referencedTable(bb, root, 6)
    if (type === Body.NONE || body < 0) return this.fail('empty Message: no body')
    const bodySize = tableSize(bb, body, len)
    if (bodySize < 0) return this.fail(`${kCorrupt} (${Body[type] ?? 'body'})`)

    if (type === Body.PredictRequest) {
      if (!fieldsFit(bb, body, bodySize, kRequestFields)) return this.fail(`${kCorrupt} (PredictRequest)`)
      this.request.__init(body, bb)
      this.id = this.request.id()
      this.idKnown = true
      return kFrameRequest
    }
    if (type === Body.PredictBatch) {
      if (!fieldsFit(bb, body, bodySize, kBatchFields)) return this.fail(`${kCorrupt} (PredictBatch)`)
      const idOff = bb.__offset(body, 4)
      this.id = idOff === 0 ? 0 : bb.readUint32(body + idOff)
      this.idKnown = true
      const vec = referencedTable(bb, body, kRequestsSlot)
      if (vec < 0) {
        this.vector = 0
        return kFrameBatch
      }
      if (vec + 4 > len) return this.fail(`${kCorrupt} (PredictBatch.requests)`)
      const n = bb.readUint32(vec)
      const tooLong = batchLengthIssue(n, maxBatchRequests, ['requests'])
      if (tooLong !== null) {
        this.issues = [tooLong]
        return this.fail(batchLengthMessage(n, maxBatchRequests))
      }
      if (vec + 4 + 4 * n > len) return this.fail(`${kCorrupt} (PredictBatch.requests)`)
      this.vector = vec
      this.length = n
      return kFrameBatch
    }
    // A message only the server sends: refused, echoing its id when the type has one.
    const name = Body[type]
    if (name === undefined) return this.fail(`unknown message type ${type}`)
    if (type !== Body.Hello && fieldsFit(bb, body, bodySize, kIdFirstFields)) {
      const idOff = bb.__offset(body, 4)
      this.id = idOff === 0 ? 0 : bb.readUint32(body + idOff)
      this.idKnown = true
    }
    return this.fail(`unexpected message type ${name}; a client sends PredictRequest or PredictBatch`)
  }

  /**
   * Validates request `index` of the open batch (-1: the single request) and writes it into
   * `snapshot` and `out`, with the same rules and FastAPI-shaped issues as the JSON decoder.
   */
  decode (
    index: number,
    snapshot: MarketSnapshot,
    out: DecodedRequest,
    limits: DecodeLimits,
    nowMs: number,
    locPrefix: ReadonlyArray<string | number>,
  ): readonly ValidationIssue[] {
    try {
      return this.readRequest(index, snapshot, out, limits, nowMs, locPrefix)
    } catch {
      // As in `open`: a corrupt table the checks missed is the client's error, not the server's.
      this.faults++
      clearDecoded(snapshot, out)
      return [{ loc: [...locPrefix], ...kCorruptIssue }]
    }
  }

  private readRequest (
    index: number,
    snapshot: MarketSnapshot,
    out: DecodedRequest,
    limits: DecodeLimits,
    nowMs: number,
    locPrefix: ReadonlyArray<string | number>,
  ): readonly ValidationIssue[] {
    clearDecoded(snapshot, out)
    this.itemId = 0
    const bb = this.bb
    const req = this.request
    if (index >= 0) {
      const at = this.vector + 4 + 4 * index
      const pos = at + bb.readUint32(at)
      const size = tableSize(bb, pos, this.len)
      if (size < 0 || !fieldsFit(bb, pos, size, kRequestFields)) return [{ loc: [...locPrefix], ...kCorruptIssue }]
      req.__init(pos, bb)
    }
    this.itemId = req.id()
    if (!stringFits(bb, req.bb_pos, kSymbolSlot, this.len)) return [{ loc: [...locPrefix, 'symbol'], ...kCorruptIssue }]
    let issues: ValidationIssue[] | null = null

    for (let i = 0; i < kNumericFields.length; i++) {
      const field = kNumericFields[i]!
      const v = kGetters[i]!.call(req)
      if (v === null) {
        if (field.required) (issues ??= []).push({ loc: [...locPrefix, field.wire], ...kIssue.missing })
        continue
      }
      const issue = numericIssue(field, v)
      if (issue !== null) {
        (issues ??= []).push({ loc: [...locPrefix, field.wire], ...issue })
        continue
      }
      snapshot[field.key] = v
    }

    const symbolBytes = req.symbol(flatbuffers.Encoding.UTF8_BYTES) as Uint8Array | null
    if (symbolBytes !== null) {
      const symbol = asciiSymbol(symbolBytes)
      if (symbol === null) (issues ??= []).push({ loc: [...locPrefix, 'symbol'], ...kIssue.badSymbol })
      else out.symbol = symbol
    }

    const ts = req.timestampMs()
    if (ts !== null) {
      const issue = timestampIssue(ts, nowMs, limits.maxClockSkewMs)
      if (issue !== null) (issues ??= []).push({ loc: [...locPrefix, 'timestamp_ms'], ...issue })
      else snapshot.timestampMs = ts
    }

    const deadline = req.deadlineMs()
    if (deadline !== null) {
      if (deadline === 0) (issues ??= []).push({ loc: [...locPrefix, 'deadline_ms'], ...kIssue.badDeadline })
      else out.deadlineMs = deadline
    }
    return issues ?? kNoIssues
  }

  private fail (message: string): FrameKind {
    this.error = message
    return kFrameInvalid
  }
}

const kNoIssues: readonly ValidationIssue[] = Object.freeze([])

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

const kMaxCachedStrings = 16_384

const kFbStatus: Readonly<Record<ComponentStatusName, ComponentStatus>> = {
  used: ComponentStatus.USED, no_history: ComponentStatus.NO_HISTORY, failed: ComponentStatus.FAILED,
}

/** Encodes the server's messages with one reused Builder; each result is valid until the next call. */
export class FbWriter {
  private readonly builder = new flatbuffers.Builder(1024)
  private readonly offsets: number[] = []
  /** The Component tables of the Prediction being written (inside a batch, while `offsets` holds its items). */
  private readonly componentOffsets: number[] = []
  /**
   * UTF-8 of the strings every answer repeats (model versions, symbols). TextEncoder.encode was
   * most of the cost of encoding a Prediction (about 1.3 of 1.8 µs); the Builder copies bytes.
   * Bounded: cleared when it passes kMaxCachedStrings.
   */
  private readonly utf8 = new Map<string, Uint8Array>()
  private readonly encoder = new TextEncoder()

  /** `components`: a model set's members' parts; null (a single model) writes no components field at all. */
  prediction (
    id: number, probability: number, modelVersion: string, symbol: string, latencyMs: number, components: readonly ComponentSource[] | null,
  ): Uint8Array {
    const b = this.builder
    b.clear()
    const body = this.writePrediction(id, probability, modelVersion, symbol, latencyMs, components)
    return this.finish(Body.Prediction, body)
  }

  error (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): Uint8Array {
    const b = this.builder
    b.clear()
    const body = this.writeError(id, idKnown, wireCode, message, detailJson)
    return this.finish(Body.ErrorResponse, body)
  }

  batchResult (src: BatchResultSource): Uint8Array {
    const b = this.builder
    b.clear()
    const items = this.offsets
    items.length = src.size
    for (let i = 0; i < src.size; i++) {
      let prediction = 0
      let error = 0
      if (src.failed[i] === 0) {
        prediction = this.writePrediction(src.itemIds[i]!, src.probability[i]!, src.modelVersions[i]!, src.symbols[i]!, src.latencyMs[i]!,
          src.components[i] ?? null)
      } else {
        error = this.writeError(src.itemIds[i]!, true, src.wireCodes[i]!, src.messages[i]!, src.details[i] ?? null)
      }
      BatchItem.startBatchItem(b)
      if (prediction !== 0) BatchItem.addPrediction(b, prediction)
      if (error !== 0) BatchItem.addError(b, error)
      items[i] = BatchItem.endBatchItem(b)
    }
    const vector = BatchResult.createItemsVector(b, items)
    items.length = 0
    BatchResult.startBatchResult(b)
    BatchResult.addId(b, src.id)
    BatchResult.addItems(b, vector)
    return this.finish(Body.BatchResult, BatchResult.endBatchResult(b))
  }

  hello (info: HelloInfo): Uint8Array {
    const b = this.builder
    b.clear()
    const modelVersion = info.modelVersion === null ? 0 : b.createString(info.modelVersion)
    const featureSet = b.createString(info.featureSetVersion)
    const names = info.features.map((f) => b.createString(f))
    const features = Hello.createFeaturesVector(b, names)
    const defaultSymbol = b.createString(info.defaultSymbol)
    Hello.startHello(b)
    Hello.addProtocolVersion(b, kProtocolVersion)
    if (modelVersion !== 0) Hello.addModelVersion(b, modelVersion)
    Hello.addFeatureSetVersion(b, featureSet)
    Hello.addFeatures(b, features)
    Hello.addMaxInFlight(b, info.maxInFlight)
    Hello.addMaxMessageBytes(b, info.maxMessageBytes)
    Hello.addMaxBatchRequests(b, info.maxBatchRequests)
    Hello.addDefaultSymbol(b, defaultSymbol)
    return this.finish(Body.Hello, Hello.endHello(b))
  }

  private bytesOf (s: string): Uint8Array {
    let bytes = this.utf8.get(s)
    if (bytes === undefined) {
      if (this.utf8.size >= kMaxCachedStrings) this.utf8.clear()
      bytes = this.encoder.encode(s)
      this.utf8.set(s, bytes)
    }
    return bytes
  }

  private writePrediction (
    id: number, probability: number, modelVersion: string, symbol: string, latencyMs: number, components: readonly ComponentSource[] | null,
  ): number {
    const b = this.builder
    // Children before the table (a FlatBuffers builder cannot nest tables).
    const parts = components === null ? 0 : this.writeComponents(components)
    const version = b.createString(this.bytesOf(modelVersion))
    const sym = b.createString(this.bytesOf(symbol))
    const p = round6(probability)
    Prediction.startPrediction(b)
    Prediction.addId(b, id)
    Prediction.addDirection(b, isLong(probability) ? Direction.LONG : Direction.SHORT)
    Prediction.addConfidence(b, wireConfidence(probability, p))
    Prediction.addProbabilityLong(b, p)
    Prediction.addModelVersion(b, version)
    Prediction.addSymbol(b, sym)
    Prediction.addLatencyMs(b, round3(latencyMs))
    // Absent, not empty, for a single model: its Prediction stays byte for byte the phase-1 one
    // (the builder trims the unused trailing vtable slot).
    if (parts !== 0) Prediction.addComponents(b, parts)
    return Prediction.endPrediction(b)
  }

  /**
   * The `components` vector. A left-out member's probability (NaN) is not written: the field is
   * an optional scalar, read back as null; so is any non-finite probability. A non-finite weight
   * (the combiner never makes one) is written as 0.
   */
  private writeComponents (components: readonly ComponentSource[]): number {
    const b = this.builder
    const tables = this.componentOffsets
    tables.length = components.length
    for (let i = 0; i < components.length; i++) {
      const c = components[i]!
      const version = b.createString(this.bytesOf(c.modelVersion))
      Component.startComponent(b)
      Component.addModelVersion(b, version)
      if (Number.isFinite(c.probability)) Component.addProbabilityLong(b, round6(c.probability))
      Component.addWeight(b, Number.isFinite(c.weight) ? round6(c.weight) : 0)
      Component.addStatus(b, kFbStatus[c.status] ?? ComponentStatus.FAILED)
      tables[i] = Component.endComponent(b)
    }
    const vector = Prediction.createComponentsVector(b, tables)
    tables.length = 0
    return vector
  }

  private writeError (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): number {
    const b = this.builder
    const msg = b.createString(message)
    const detail = detailJson === null ? 0 : b.createString(detailJson)
    ErrorResponse.startErrorResponse(b)
    ErrorResponse.addId(b, id)
    ErrorResponse.addIdKnown(b, idKnown)
    ErrorResponse.addCode(b, kWireToFb[wireCode])
    ErrorResponse.addMessage(b, msg)
    if (detail !== 0) ErrorResponse.addDetailJson(b, detail)
    return ErrorResponse.endErrorResponse(b)
  }

  private finish (type: Body, body: number): Uint8Array {
    const b = this.builder
    Message.finishMessageBuffer(b, Message.createMessage(b, type, body))
    return b.asUint8Array()
  }
}
