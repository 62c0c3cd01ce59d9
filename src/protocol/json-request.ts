/**
 * Requests as JSON, both ends: the server's decoder (HTTP /predict bodies, /ws text frames) and
 * the client's encoders (/ws text frames; HTTP bodies are the PredictionRequest itself).
 */
import type { ValidationIssue } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { kTypeBatch, kTypeRequest, type PredictionRequest } from './messages.js'
import { batchLengthIssue, kIssue, kNumericFields, kSymbolPattern, numericIssue, timestampIssue } from './request-fields.js'

/** What the decoder extracts besides the snapshot. */
export interface DecodedRequest {
  /** Symbol, or null for the configured default. */
  symbol: string | null
  /** Client-requested deadline in ms (may only shorten the server's), or NaN for the default. */
  deadlineMs: number
}

/** Both decoders start from this: no field read yet, so the snapshot is empty and nothing is asked for. */
export function clearDecoded (snapshot: MarketSnapshot, out: DecodedRequest): void {
  snapshot.reset()
  out.symbol = null
  out.deadlineMs = Number.NaN
}

export interface DecodeLimits {
  readonly maxClockSkewMs: number
}

const kNoIssues: readonly ValidationIssue[] = Object.freeze([])

/**
 * Validates one parsed JSON request object and writes it into `snapshot` and `out`.
 *
 * Absent and null mean the same thing (missing: NaN). Unknown fields are ignored. Numbers must be
 * JSON numbers: strings, booleans and non-finite values (JSON.parse turns 1e999 into Infinity) are
 * refused rather than coerced. Returns the FastAPI-shaped issues, empty when valid; `loc` is
 * prefixed with `locPrefix` (["body"] for /predict, ["body", "requests", i] in a batch).
 *
 * Only own properties are read, so `__proto__` or `constructor` keys in hostile bodies cannot
 * smuggle values in through the prototype chain.
 */
export function decodeJsonRequest (
  value: unknown,
  snapshot: MarketSnapshot,
  out: DecodedRequest,
  limits: DecodeLimits,
  nowMs: number,
  locPrefix: ReadonlyArray<string | number>,
): readonly ValidationIssue[] {
  clearDecoded(snapshot, out)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ loc: [...locPrefix], ...kIssue.notObject }]
  }
  const body = value as Record<string, unknown>
  let issues: ValidationIssue[] | null = null

  for (let i = 0; i < kNumericFields.length; i++) {
    const field = kNumericFields[i]!
    const v = Object.hasOwn(body, field.wire) ? body[field.wire] : undefined
    if (v === undefined || v === null) {
      if (field.required) (issues ??= []).push({ loc: [...locPrefix, field.wire], ...kIssue.missing })
      continue
    }
    const issue = typeof v === 'number' ? numericIssue(field, v) : kIssue.notNumber
    if (issue !== null) {
      (issues ??= []).push({ loc: [...locPrefix, field.wire], ...issue })
      continue
    }
    snapshot[field.key] = v as number
  }

  const symbol = Object.hasOwn(body, 'symbol') ? body.symbol : undefined
  if (symbol !== undefined && symbol !== null) {
    if (typeof symbol !== 'string') (issues ??= []).push({ loc: [...locPrefix, 'symbol'], ...kIssue.notString })
    else if (!kSymbolPattern.test(symbol)) (issues ??= []).push({ loc: [...locPrefix, 'symbol'], ...kIssue.badSymbol })
    else out.symbol = symbol
  }

  const ts = Object.hasOwn(body, 'timestamp_ms') ? body.timestamp_ms : undefined
  if (ts !== undefined && ts !== null) {
    const issue = typeof ts === 'number' ? timestampIssue(ts, nowMs, limits.maxClockSkewMs) : kIssue.notInteger
    if (issue !== null) (issues ??= []).push({ loc: [...locPrefix, 'timestamp_ms'], ...issue })
    else snapshot.timestampMs = ts as number
  }

  const deadline = Object.hasOwn(body, 'deadline_ms') ? body.deadline_ms : undefined
  if (deadline !== undefined && deadline !== null) {
    if (typeof deadline !== 'number' || !Number.isSafeInteger(deadline) || deadline <= 0) {
      (issues ??= []).push({ loc: [...locPrefix, 'deadline_ms'], ...kIssue.badDeadline })
    } else {
      out.deadlineMs = deadline
    }
  }
  return issues ?? kNoIssues
}

const kBodyRequestsLoc: readonly string[] = Object.freeze(['body', 'requests'])

/**
 * The shape of a /predict/batch body, `{"requests": [...]}` with at most `maxItems` items: null
 * when it holds, else the issue (each item is then decoded by `decodeJsonRequest`).
 */
export function batchBodyIssue (value: unknown, maxItems: number): ValidationIssue | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { loc: ['body'], ...kIssue.notObject }
  const requests = Object.hasOwn(value, 'requests') ? (value as { requests: unknown }).requests : undefined
  if (requests === undefined || requests === null) return { loc: [...kBodyRequestsLoc], ...kIssue.missing }
  if (!Array.isArray(requests)) return { loc: [...kBodyRequestsLoc], ...kIssue.notList }
  return batchLengthIssue(requests.length, maxItems, [...kBodyRequestsLoc])
}

// ---------------------------------------------------------------------------------------------
// The client's side: /ws text frames
// ---------------------------------------------------------------------------------------------

/** A request text frame: the HTTP body plus `type` and `id`. */
export function requestText (id: number, req: PredictionRequest): string {
  return JSON.stringify({ ...req, type: kTypeRequest, id })
}

/** A batch text frame; item i carries id i. */
export function batchText (id: number, reqs: readonly PredictionRequest[]): string {
  return JSON.stringify({ type: kTypeBatch, id, requests: reqs.map((r, i) => ({ ...r, id: i })) })
}
