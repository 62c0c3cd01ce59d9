import type { ValidationIssue } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { kIssue, kNumericFields, kSymbolPattern, numericIssue, timestampIssue } from './request-fields.js'

/** What the decoder extracts besides the snapshot. */
export interface DecodedRequest {
  /** Symbol, or null for the configured default. */
  symbol: string | null
  /** Client-requested deadline in ms (may only shorten the server's), or NaN for the default. */
  deadlineMs: number
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
  snapshot.reset()
  out.symbol = null
  out.deadlineMs = Number.NaN
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
