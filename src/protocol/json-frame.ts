/**
 * The server's reader of /ws text frames (CONTRACT.md, "WebSocket"). A request is the HTTP
 * /predict body plus `id` (and optionally `"type": "predict_request"`); a batch is
 * `{"type": "predict_batch", "id", "requests": [...]}`. The requests themselves are validated by
 * the HTTP decoder (`decodeJsonRequest`), so both transports accept and refuse the same inputs
 * with the same FastAPI-shaped issues; `loc` starts at the frame (no "body").
 */
import type { ErrorCode, ValidationIssue } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { decodeJsonRequest, type DecodedRequest, type DecodeLimits } from './json-request.js'
import { kFrameBatch, kFrameInvalid, kFrameRequest, kTypeBatch, kTypeRequest, type FrameKind } from './messages.js'
import { batchLengthIssue, batchLengthMessage, describeClientValue, kIssue } from './request-fields.js'

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
  /** The id of the request `decode` last read (a batch item's own id; 0 when it had none or a bad one). */
  decodedId = 0
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
    const tooLong = batchLengthIssue(requests.length, maxBatchRequests, ['requests'])
    if (tooLong !== null) return this.fail(batchLengthMessage(requests.length, maxBatchRequests), [tooLong])
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

  /** Requests in the batch frame. */
  get length (): number { return this.requests.length }

  /**
   * Validates request `index` of the open frame (-1: the single request) into `snapshot` and
   * `out`, like FbFrameReader.decode. A batch item whose `id` is not a valid id is refused
   * without reading its fields.
   */
  decode (
    index: number,
    snapshot: MarketSnapshot,
    out: DecodedRequest,
    limits: DecodeLimits,
    nowMs: number,
    locPrefix: ReadonlyArray<string | number>,
  ): readonly ValidationIssue[] {
    if (index < 0) {
      this.decodedId = this.id
      return decodeJsonRequest(this.request, snapshot, out, limits, nowMs, locPrefix)
    }
    const itemId = this.itemId(index)
    if (itemId < 0) {
      this.decodedId = 0
      return [{ loc: [...locPrefix, 'id'], ...kIssue.notInteger }]
    }
    this.decodedId = itemId
    return decodeJsonRequest(this.requests[index], snapshot, out, limits, nowMs, locPrefix)
  }

  private fail (message: string, issues: readonly ValidationIssue[] | null): FrameKind {
    this.error = message
    this.issues = issues
    return kFrameInvalid
  }
}
