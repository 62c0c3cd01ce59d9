/**
 * Text frames of /ws: the protocol's messages as JSON with the HTTP field names (CONTRACT.md,
 * "WebSocket"). A request is the HTTP /predict body plus `id` (and optionally
 * `"type": "predict_request"`); a batch is `{"type": "predict_batch", "id", "requests": [...]}`.
 * Answers carry `type` ("prediction", "error", "batch_result", "hello") and the same fields as
 * the binary messages; a prediction is byte-for-byte the HTTP answer with `type` and `id` in front.
 *
 * Validation reuses the HTTP decoder (`decodeJsonRequest`), so both transports accept and refuse
 * the same inputs with the same FastAPI-shaped issues; `loc` starts at the frame (no "body").
 */
import type { ErrorCode, ValidationIssue, WireCode } from '../../errors.js'
import { kErrorTable } from '../../errors.js'
import type { BatchResultSource, FrameKind, HelloInfo } from '../../protocol/fb-codec.js'
import { kFrameBatch, kFrameInvalid, kFrameRequest, kProtocolVersion } from '../../protocol/fb-codec.js'
import { describeClientValue, kIssue } from '../../protocol/request-fields.js'
import { predictionJson } from '../http/reply.js'

export const kTypeRequest = 'predict_request'
export const kTypeBatch = 'predict_batch'

const kMaxId = 0xFFFFFFFF
const kDecoder = new TextDecoder('utf-8', { fatal: true })

function isId (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= kMaxId
}

/** Reads one text frame; reused, like FbFrameReader. Fields describe the last `open`. */
export class JsonFrameReader {
  id = 0
  idKnown = false
  error = ''
  /** Registry code for the metrics: ERR_INVALID_JSON (not JSON) or ERR_VALIDATION (wrong shape). */
  errorCode: ErrorCode = 'ERR_VALIDATION'
  issues: readonly ValidationIssue[] | null = null
  /** The single request object, or the batch's `requests` list. */
  request: unknown = null
  requests: readonly unknown[] = []
  /** Times reading a parsed frame threw and the frame was refused instead (see FbFrameReader.faults). */
  faults = 0

  open (bytes: Uint8Array, maxBatchRequests: number): FrameKind {
    this.id = 0
    this.idKnown = false
    this.error = ''
    this.errorCode = 'ERR_VALIDATION'
    this.issues = null
    this.request = null
    this.requests = []
    let value: unknown
    try {
      // uWS already closes a text frame that is not UTF-8 (1006); fatal decoding is the second guard.
      value = JSON.parse(kDecoder.decode(bytes))
    } catch (err) {
      this.errorCode = 'ERR_INVALID_JSON'
      return this.fail(`Invalid JSON: ${(err as Error).message}`, null)
    }
    try {
      return this.read(value, maxBatchRequests)
    } catch (err) {
      // Reading a parsed JSON value should not throw; if it does, the value is still the client's:
      // INVALID_ARGUMENT with the id when it was read. The fuzz tests assert `faults` stays 0.
      this.faults++
      this.request = null
      this.requests = []
      return this.fail(`frame could not be read (${(err as Error)?.name ?? 'error'})`, null)
    }
  }

  private read (value: unknown, maxBatchRequests: number): FrameKind {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.fail('a frame is a JSON object', [{ loc: [], ...kIssue.notObject }])
    }
    const frame = value as Record<string, unknown>
    const id = Object.hasOwn(frame, 'id') ? frame.id : undefined
    if (id === undefined || id === null) return this.fail('id: field required', [{ loc: ['id'], ...kIssue.missing }])
    if (!isId(id)) return this.fail('id: must be an integer from 0 to 4294967295', [{ loc: ['id'], ...kIssue.notInteger }])
    this.id = id
    this.idKnown = true
    const type = Object.hasOwn(frame, 'type') ? frame.type : undefined
    if (type === undefined || type === null || type === kTypeRequest) {
      this.request = frame
      return kFrameRequest
    }
    if (type !== kTypeBatch) {
      return this.fail(`type: unexpected ${describeClientValue(type)}; a client sends "${kTypeRequest}" or "${kTypeBatch}"`,
        [{ loc: ['type'], msg: `unexpected value; permitted: '${kTypeRequest}', '${kTypeBatch}'`, type: 'value_error.const' }])
    }
    const requests = Object.hasOwn(frame, 'requests') ? frame.requests : undefined
    if (requests === undefined || requests === null) return this.fail('requests: field required', [{ loc: ['requests'], ...kIssue.missing }])
    if (!Array.isArray(requests)) return this.fail('requests: not a list', [{ loc: ['requests'], ...kIssue.notList }])
    if (requests.length > maxBatchRequests) {
      return this.fail(`batch of ${requests.length} requests; at most ${maxBatchRequests}`,
        [{ loc: ['requests'], msg: kIssue.tooLong.msg.replace('%d', String(maxBatchRequests)), type: kIssue.tooLong.type }])
    }
    this.requests = requests
    return kFrameBatch
  }

  /**
   * The id of batch item `index`: its own `id` when given (0 when absent), or -1 when it is not a
   * valid id (the item is then refused).
   */
  itemId (index: number): number {
    const item = this.requests[index]
    if (typeof item !== 'object' || item === null) return 0
    const id = Object.hasOwn(item, 'id') ? (item as { id: unknown }).id : undefined
    if (id === undefined || id === null) return 0
    return isId(id) ? id : -1
  }

  private fail (message: string, issues: readonly ValidationIssue[] | null): FrameKind {
    this.error = message
    this.issues = issues
    return kFrameInvalid
  }
}

export function predictionText (id: number, probability: number, modelVersionJson: string, symbol: string, latencyMs: number): string {
  return `{"type":"prediction","id":${id},${predictionJson(probability, modelVersionJson, symbol, latencyMs).slice(1)}`
}

export function errorText (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): string {
  const detail = detailJson === null ? '' : `,"detail":${detailJson}`
  return `{"type":"error","id":${idKnown ? id : 'null'},"code":"${wireCode}","message":${JSON.stringify(message)}${detail}}`
}

/** `modelVersionsJson[i]` are the JSON-escaped versions (PendingRequest.modelVersionJson). */
export function batchResultText (src: BatchResultSource, modelVersionsJson: readonly string[]): string {
  let out = `{"type":"batch_result","id":${src.id},"items":[`
  for (let i = 0; i < src.size; i++) {
    if (i > 0) out += ','
    out += src.failed[i] === 0
      ? predictionText(src.itemIds[i]!, src.probability[i]!, modelVersionsJson[i]!, src.symbols[i]!, src.latencyMs[i]!)
      : errorText(src.itemIds[i]!, true, src.wireCodes[i]!, src.messages[i]!, src.details[i] ?? null)
  }
  return `${out}]}`
}

export function helloText (info: HelloInfo): string {
  return JSON.stringify({
    type: 'hello',
    protocol_version: kProtocolVersion,
    model_version: info.modelVersion,
    feature_set_version: info.featureSetVersion,
    features: info.features,
    max_in_flight: info.maxInFlight,
    max_message_bytes: info.maxMessageBytes,
    max_batch_requests: info.maxBatchRequests,
    default_symbol: info.defaultSymbol,
  })
}

/** Default message of a registry code, for the `message` field. */
export function messageOf (code: ErrorCode): string { return kErrorTable[code].message }
