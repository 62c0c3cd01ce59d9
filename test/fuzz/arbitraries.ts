/**
 * fast-check generators of hostile /ws frames and HTTP bodies, and the oracles the fuzz tests
 * check answers against. Most generated inputs are near-valid (a real request with a few hostile
 * parts), because wholly random bytes stop at the first check and exercise little.
 *
 * Not a *.test.ts file: tap does not run it.
 */
import fc from 'fast-check'
import { FbClientCodec, type PredictionRequest } from '../../src/client/wire-codec.js'

export const kNumericWire = [
  'price', 'open', 'high', 'low', 'volume', 'bid_volume', 'ask_volume', 'best_bid', 'best_ask',
  'bid_depth_5', 'ask_depth_5', 'btc_price', 'funding_rate',
] as const

const kMaxId = 0xFFFFFFFF

// ---------------------------------------------------------------------------------------------
// JSON (text frames and HTTP bodies)
// ---------------------------------------------------------------------------------------------

/**
 * Deep nesting cannot be built as a JS value and JSON.stringify'd (that is the very recursion
 * issue 10 was about), so a generated value holds a placeholder string that `toJsonText` expands
 * into the nested text after stringifying.
 */
const kDeepMark = /"@@deep:(\d+):([aos])@@"/g

export const deepArb = fc.record({
  depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 20_000 })),
  kind: fc.constantFrom('a', 'o', 's'),
}).map(({ depth, kind }) => `@@deep:${depth}:${kind}@@`)

function expandDeep (_match: string, depthText: string, kind: string): string {
  const d = Number(depthText)
  if (kind === 'a') return `${'['.repeat(d)}${']'.repeat(d)}`
  if (kind === 'o') return `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`
  return `${'[{"x":'.repeat(d)}"s"${'}]'.repeat(d)}`
}

export function toJsonText (value: unknown): string {
  return JSON.stringify(value).replace(kDeepMark, expandDeep)
}

/** Small wrong values: any shallow JSON value and edge constants. */
const smallHostileArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, 1e308, -1e308, 5e-324, 2 ** 53 + 2, -1, 0, '', 'NaN', 'Infinity', true, false, null) },
)

/**
 * Anything JSON can carry, including deep nesting and long strings. Used at a few places per frame
 * (type, id, requests, one field): a big value in every field would make each case slow to run
 * without finding more.
 */
export const hostileJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: smallHostileArb },
  { weight: 2, arbitrary: deepArb },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => 'x'.repeat(n)) },
)

const plausiblePrice = fc.double({ min: 0.01, max: 1e5, noNaN: true })
/** A numeric field: mostly a number (any double, edge values), sometimes any JSON value. */
const numericFieldArb = fc.oneof(
  { weight: 5, arbitrary: plausiblePrice },
  { weight: 2, arbitrary: fc.double({ noDefaultInfinity: true, noNaN: true }) },
  { weight: 1, arbitrary: smallHostileArb },
)
export const validSymbolArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/)
const symbolFieldArb = fc.oneof(
  { weight: 4, arbitrary: validSymbolArb },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: smallHostileArb },
)
/** Timestamps mostly in the past (a future bar would make later requests of that symbol stale). */
const timestampArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: Date.now() - 30 * 86_400_000, max: Date.now() - 3_600_000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: smallHostileArb },
)
const deadlineArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1000, max: 60_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) },
  { weight: 1, arbitrary: smallHostileArb },
)
export const idFieldArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: kMaxId }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, kMaxId + 1, 1.5, '7', true, null, 1e21) },
  { weight: 1, arbitrary: hostileJsonArb },
)

const requestFields: Record<string, fc.Arbitrary<unknown>> = {
  symbol: symbolFieldArb,
  timestamp_ms: timestampArb,
  deadline_ms: deadlineArb,
}
for (const f of kNumericWire) requestFields[f] = f === 'price' ? fc.oneof({ weight: 6, arbitrary: plausiblePrice }, { weight: 1, arbitrary: numericFieldArb }) : numericFieldArb

const fieldNames = Object.keys(requestFields)

/** A request object with HTTP field names: every field optional, most values plausible, at most one big. */
export const jsonRequestArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.tuple(fc.record(requestFields, { requiredKeys: [] }), fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...fieldNames), hostileJsonArb) }))
      .map(([req, big]) => (big === null ? req : { ...req, [big[0]]: big[1] })),
  },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), smallHostileArb, { maxKeys: 5 }) },
)

/** Text-level damage to a JSON text: what a broken serializer or a hostile client sends. */
export const textMutationArb = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('"', '\\', '{', '[', ']', '}', ',', ':', '\u0000', '\ud800', 'null', '1e999', '-', '"__proto__":{"price":1},')) }),
  fc.record({ op: fc.constant('proto' as const), key: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'), value: fc.jsonValue({ maxDepth: 2 }) }),
)
export type TextMutation = typeof textMutationArb extends fc.Arbitrary<infer T> ? T : never

export function mutateText (text: string, mutations: readonly TextMutation[]): string {
  let s = text
  for (const m of mutations) {
    switch (m.op) {
      case 'truncate': s = s.slice(0, m.at % (s.length + 1)); break
      case 'delete': { const at = m.at % (s.length + 1); s = s.slice(0, at) + s.slice(at + m.n); break }
      case 'insert': { const at = m.at % (s.length + 1); s = s.slice(0, at) + m.text + s.slice(at); break }
      case 'proto': if (s.startsWith('{')) s = `{${JSON.stringify(m.key)}:${JSON.stringify(m.value)}${s.length > 2 ? ',' : ''}${s.slice(1)}`; break
    }
  }
  return s
}

/** A text (JSON) /ws frame as a JS value: a request or a batch, with hostile parts. */
export const wsJsonFrameValueArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(jsonRequestArb, fc.option(idFieldArb, { nil: undefined }), fc.option(fc.oneof(fc.constant('predict_request'), hostileJsonArb), { nil: undefined }))
      .map(([req, id, type]) => ({ ...(type === undefined ? {} : { type }), ...(id === undefined ? {} : { id }), ...req })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.option(idFieldArb, { nil: undefined }),
      fc.oneof(
        { weight: 5, arbitrary: fc.array(fc.tuple(jsonRequestArb, fc.option(idFieldArb, { nil: undefined })).map(([r, id]) => (id === undefined ? r : { id, ...r })), { maxLength: 12 }) },
        { weight: 1, arbitrary: hostileJsonArb },
      ),
    ).map(([id, requests]) => ({ type: 'predict_batch', ...(id === undefined ? {} : { id }), requests })),
  },
)

/** A whole text frame: a near-valid frame, maybe damaged, or any string at all. */
export const wsJsonFrameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: wsJsonFrameValueArb.map(toJsonText) },
  { weight: 3, arbitrary: fc.tuple(wsJsonFrameValueArb, fc.array(textMutationArb, { minLength: 1, maxLength: 3 })).map(([v, m]) => mutateText(toJsonText(v), m)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: hostileJsonArb.map(toJsonText) },
)

/** The id the server must echo for a text frame: from an independent parse, null when unreadable. */
export function expectedJsonId (text: string): number | null {
  let v: unknown
  try { v = JSON.parse(text) } catch { return null }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, 'id')) return null
  const id = (v as { id: unknown }).id
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= kMaxId ? id : null
}

/** An HTTP body for /predict (a request) or /predict/batch ({"requests": [...]}). */
export const httpBodyArb = (batch: boolean): fc.Arbitrary<string> => {
  const value = batch
    ? fc.oneof(
      { weight: 5, arbitrary: fc.array(jsonRequestArb, { maxLength: 10 }).map((requests) => ({ requests })) },
      { weight: 1, arbitrary: hostileJsonArb.map((requests) => ({ requests })) },
      { weight: 1, arbitrary: hostileJsonArb },
    )
    : fc.oneof({ weight: 5, arbitrary: jsonRequestArb }, { weight: 1, arbitrary: hostileJsonArb })
  return fc.oneof(
    { weight: 6, arbitrary: value.map(toJsonText) },
    { weight: 3, arbitrary: fc.tuple(value, fc.array(textMutationArb, { minLength: 1, maxLength: 3 })).map(([v, m]) => mutateText(toJsonText(v), m)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  )
}

// ---------------------------------------------------------------------------------------------
// FlatBuffers (binary frames)
// ---------------------------------------------------------------------------------------------

const fbNumberArb = fc.oneof({ weight: 4, arbitrary: plausiblePrice }, { weight: 1, arbitrary: fc.double() })
const fbOptional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 3 })

export const fbRequestArb: fc.Arbitrary<PredictionRequest> = fc.record({
  price: fbNumberArb,
  open: fbOptional(fbNumberArb),
  high: fbOptional(fbNumberArb),
  low: fbOptional(fbNumberArb),
  volume: fbOptional(fbNumberArb),
  bid_volume: fbOptional(fbNumberArb),
  ask_volume: fbOptional(fbNumberArb),
  best_bid: fbOptional(fbNumberArb),
  best_ask: fbOptional(fbNumberArb),
  bid_depth_5: fbOptional(fbNumberArb),
  ask_depth_5: fbOptional(fbNumberArb),
  btc_price: fbOptional(fbNumberArb),
  funding_rate: fbOptional(fc.double()),
  symbol: fbOptional(fc.oneof({ weight: 3, arbitrary: validSymbolArb }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) })),
  timestamp_ms: fbOptional(fc.oneof({ weight: 3, arbitrary: fc.integer({ min: Date.now() - 30 * 86_400_000, max: Date.now() - 3_600_000 }) }, { weight: 1, arbitrary: fc.double() })),
  deadline_ms: fbOptional(fc.oneof(fc.integer({ min: 1000, max: 60_000 }), fc.nat(0xFFFFFFFF))),
}, { requiredKeys: ['price'] }) as fc.Arbitrary<PredictionRequest>

const codec = new FbClientCodec()

/** A valid binary frame (a copy: the codec's Builder is reused). */
export const fbFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.nat(kMaxId), fbRequestArb).map(([id, r]) => codec.request(id, r).slice()) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(kMaxId), fc.array(fbRequestArb, { maxLength: 8 })).map(([id, rs]) => codec.batch(id, rs).slice()) },
)

/** Values that make an offset or a length point out of bounds, wrap, or go negative as int32. */
const hostileU32 = fc.oneof(
  fc.constantFrom(0, 1, 3, 4, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFC, 0xFFFFFFFF),
  fc.nat(0xFFFFFFFF),
  fc.integer({ min: 0, max: 512 }),
)

export const byteMutationArb = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constant('u16' as const), at: fc.nat(), value: fc.oneof(fc.nat(0xFFFF), fc.constantFrom(0, 2, 4, 0xFFFF, 0x8000)) }),
  fc.record({ op: fc.constant('u32' as const), at: fc.nat(), aligned: fc.boolean(), value: hostileU32 }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
)
export type ByteMutation = typeof byteMutationArb extends fc.Arbitrary<infer T> ? T : never

export function mutateBytes (frame: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array {
  let b = frame.slice()
  for (const m of mutations) {
    const n = b.length
    switch (m.op) {
      case 'flip': if (n > 0) b[m.at % n]! ^= 1 << m.bit; break
      case 'byte': if (n > 0) b[m.at % n] = m.value; break
      case 'u16': if (n >= 2) new DataView(b.buffer, b.byteOffset).setUint16(m.at % (n - 1), m.value, true); break
      case 'u32': {
        if (n < 4) break
        let at = m.at % (n - 3)
        if (m.aligned) at &= ~3
        new DataView(b.buffer, b.byteOffset).setUint32(at, m.value, true)
        break
      }
      case 'truncate': b = b.slice(0, m.at % (n + 1)); break
      case 'append': { const c = new Uint8Array(n + m.bytes.length); c.set(b); c.set(m.bytes, n); b = c; break }
    }
  }
  return b
}

/** A binary frame: mostly a valid one damaged a little, sometimes random bytes that pass the identifier check. */
export const fbHostileFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fbFrameArb, fc.array(byteMutationArb, { minLength: 1, maxLength: 4 })).map(([f, m]) => mutateBytes(f, m)) },
  { weight: 1, arbitrary: fbFrameArb },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 128 }).map((b) => { const c = new Uint8Array(Math.max(12, b.length)); c.set(b); c.set([0x4D, 0x4C, 0x50, 0x53], 4); return c }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
)
