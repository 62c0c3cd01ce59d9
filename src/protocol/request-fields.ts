import type { ValidationIssue } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'

/**
 * The contract's request fields, once. Both decoders (JSON here, FlatBuffers later) walk this
 * table, so a field's name, nullability and bounds are defined in one place.
 */
export type NumericSnapshotKey = Exclude<keyof MarketSnapshot, 'reset' | 'timestampMs'>

export interface NumericField {
  /** Name on the wire, as the old FastAPI service spelled it. */
  readonly wire: string
  readonly key: NumericSnapshotKey
  readonly required: boolean
  /** true: must be > 0 (prices); false: any finite number (funding rate can be negative). */
  readonly positive: boolean
  /** true: must be >= 0 (volumes, depths). */
  readonly nonNegative: boolean
}

export const kNumericFields: readonly NumericField[] = [
  { wire: 'price', key: 'price', required: true, positive: true, nonNegative: true },
  { wire: 'open', key: 'open', required: false, positive: true, nonNegative: true },
  { wire: 'high', key: 'high', required: false, positive: true, nonNegative: true },
  { wire: 'low', key: 'low', required: false, positive: true, nonNegative: true },
  { wire: 'volume', key: 'volume', required: false, positive: false, nonNegative: true },
  { wire: 'bid_volume', key: 'bidVolume', required: false, positive: false, nonNegative: true },
  { wire: 'ask_volume', key: 'askVolume', required: false, positive: false, nonNegative: true },
  { wire: 'best_bid', key: 'bestBid', required: false, positive: true, nonNegative: true },
  { wire: 'best_ask', key: 'bestAsk', required: false, positive: true, nonNegative: true },
  { wire: 'bid_depth_5', key: 'bidDepth5', required: false, positive: false, nonNegative: true },
  { wire: 'ask_depth_5', key: 'askDepth5', required: false, positive: false, nonNegative: true },
  { wire: 'btc_price', key: 'btcPrice', required: false, positive: true, nonNegative: true },
  { wire: 'funding_rate', key: 'fundingRate', required: false, positive: false, nonNegative: false },
]

export const kSymbolPattern = /^[A-Za-z0-9_-]{1,32}$/

/** Error types and messages in pydantic v1's spelling, which the bot's logs were written against. */
export const kIssue = {
  missing: { msg: 'field required', type: 'value_error.missing' },
  notNumber: { msg: 'value is not a valid float', type: 'type_error.float' },
  notFinite: { msg: 'value is not a finite number', type: 'value_error.number.not_finite' },
  notPositive: { msg: 'ensure this value is greater than 0', type: 'value_error.number.not_gt' },
  negative: { msg: 'ensure this value is greater than or equal to 0', type: 'value_error.number.not_ge' },
  notString: { msg: 'str type expected', type: 'type_error.str' },
  badSymbol: { msg: `string does not match regex "${kSymbolPattern.source}"`, type: 'value_error.str.regex' },
  notInteger: { msg: 'value is not a valid integer', type: 'type_error.integer' },
  futureTimestamp: { msg: 'timestamp_ms is too far in the future', type: 'value_error.timestamp.future' },
  staleTimestamp: { msg: "timestamp_ms falls in a bar older than the symbol's current bar", type: 'value_error.timestamp.stale' },
  notObject: { msg: 'value is not a valid dict', type: 'type_error.dict' },
  notList: { msg: 'value is not a valid list', type: 'type_error.list' },
  tooLong: { msg: 'ensure this value has at most %d items', type: 'value_error.list.max_items' },
  badDeadline: { msg: 'ensure this value is an integer greater than 0', type: 'value_error.number.not_gt' },
} as const

export interface IssueKind {
  readonly msg: string
  readonly type: string
}

/**
 * The range rules of a numeric field, for a value already known to be a number (each decoder
 * checks its own wire type first). null when the value is acceptable.
 */
export function numericIssue (field: NumericField, v: number): IssueKind | null {
  if (!Number.isFinite(v)) return kIssue.notFinite
  if (field.positive && !(v > 0)) return kIssue.notPositive
  if (field.nonNegative && v < 0) return kIssue.negative
  return null
}

/**
 * timestamp_ms rules: a non-negative integer, and not too far in the future (a far-future
 * timestamp would open a bar that makes every real-time request for the symbol stale).
 */
export function timestampIssue (ts: number, nowMs: number, maxClockSkewMs: number): IssueKind | null {
  if (!Number.isSafeInteger(ts) || ts < 0) return kIssue.notInteger
  if (ts > nowMs + maxClockSkewMs) return kIssue.futureTimestamp
  return null
}

/**
 * The refusal of a request whose timestamp_ms falls in a bar older than its symbol's current one
 * (found by the feature update, after decoding): the issue at the request's `loc`.
 */
export function staleIssues (locPrefix: ReadonlyArray<string | number>): ValidationIssue[] {
  return [{ loc: [...locPrefix, 'timestamp_ms'], ...kIssue.staleTimestamp }]
}

/**
 * The batch-length rule (max_batch_requests), the same for /predict/batch and both /ws frame
 * formats: the issue at `loc` (the `requests` list), or null when `n` items are allowed.
 */
export function batchLengthIssue (n: number, maxItems: number, loc: ReadonlyArray<string | number>): ValidationIssue | null {
  if (!batchTooLong(n, maxItems)) return null
  return { loc, msg: kIssue.tooLong.msg.replace('%d', String(maxItems)), type: kIssue.tooLong.type }
}

/** The rule itself, also checked by the client before sending (against the hello's limit). */
export function batchTooLong (n: number, maxItems: number): boolean { return n > maxItems }

/** The `message` of a /ws error answer for a batch over the limit. */
export function batchLengthMessage (n: number, maxItems: number): string {
  return `batch of ${n} requests; at most ${maxItems}`
}

/** The one-line `message` of a /ws error answer for validation issues: the first, as `loc: msg`. */
export function issuesMessage (issues: readonly ValidationIssue[]): string {
  const first = issues[0]!
  return first.loc.length > 0 ? `${first.loc.join('.')}: ${first.msg}` : first.msg
}

/** Longest piece of a client string quoted back in an error message. */
const kMaxEchoChars = 64

/**
 * A bounded, non-recursive description of a value a client sent, for an error message. Never
 * JSON.stringify the value itself: that is recursive (an array nested 10,000 deep overflows the
 * stack, issue 10) and unbounded (a 1 MB string comes back as a 1 MB message). Strings are quoted
 * up to kMaxEchoChars characters; containers are named by type only.
 */
export function describeClientValue (v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length <= kMaxEchoChars ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, kMaxEchoChars))}... (${v.length} characters)`
    case 'number':
    case 'boolean':
      return String(v)
    default:
      if (v === null) return 'null'
      return Array.isArray(v) ? 'a list' : 'an object'
  }
}
