/**
 * Every message type of schemas/prediction.fbs through the schema and back, with the codecs the
 * two ends really use: the client library encodes requests and the server's reader decodes them;
 * the server's writer encodes answers and the client library decodes them. No socket needed.
 */
import t from 'tap'
import { decodeServerBinary, decodeServerText, FbClientCodec, type PredictionRequest } from '../../src/client/wire-codec.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { kFeatureNames, kFeatureSetVersion } from '../../src/features/feature-spec.js'
import {
  FbFrameReader, FbWriter, kFrameBatch, kFrameInvalid, kFrameRequest, kProtocolVersion, type BatchResultSource,
} from '../../src/protocol/fb-codec.js'
import type { DecodedRequest } from '../../src/protocol/json-request.js'
import { kNumericFields } from '../../src/protocol/request-fields.js'
import { batchResultText, errorText, helloText, predictionText } from '../../src/protocol/json-answer.js'

const kLimits = { maxClockSkewMs: 60_000 }
const kNow = Date.UTC(2026, 3, 1)

/** Decodes request `index` (-1: the single request) of the frame the reader has open. */
function decodeOne (reader: FbFrameReader, index = -1): { snapshot: MarketSnapshot, out: DecodedRequest, issues: readonly unknown[] } {
  const snapshot = new MarketSnapshot()
  const out: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }
  const issues = reader.decode(index, snapshot, out, kLimits, kNow, [])
  return { snapshot, out, issues }
}

t.test('PredictRequest: every contract field, id, symbol, timestamp and deadline survive', async (t) => {
  const codec = new FbClientCodec()
  const reader = new FbFrameReader()
  const full: PredictionRequest = {
    price: 612.5, open: 610.25, high: 613, low: 609.5, volume: 1520.3, bid_volume: 812, ask_volume: 640.5,
    best_bid: 612.4, best_ask: 612.6, bid_depth_5: 301.5, ask_depth_5: 280.25, btc_price: 64_123.5,
    funding_rate: -0.0001, symbol: 'BNBUSDT', timestamp_ms: kNow - 1234, deadline_ms: 50,
  }
  t.equal(reader.open(codec.request(0xFFFFFFFF, full), 10), kFrameRequest)
  t.equal(reader.id, 0xFFFFFFFF, 'uint32 id, the largest')
  t.ok(reader.idKnown)
  const { snapshot, out, issues } = decodeOne(reader)
  t.same(issues, [])
  for (const f of kNumericFields) t.equal(snapshot[f.key], full[f.wire as keyof PredictionRequest], f.wire)
  t.equal(snapshot.timestampMs, kNow - 1234)
  t.equal(out.symbol, 'BNBUSDT')
  t.equal(out.deadlineMs, 50)
})

t.test('PredictRequest: missing stays missing (NaN), and an explicit 0 stays 0', async (t) => {
  const codec = new FbClientCodec()
  const reader = new FbFrameReader()
  // flatc 2.0.8 wrote optional scalars with default 0, dropping explicit zeros; the generator fixes it.
  const bytes = codec.request(1, { price: 612.5, volume: 0, funding_rate: 0, bid_volume: null, ask_volume: Number.NaN })
  t.equal(reader.open(bytes, 10), kFrameRequest)
  const { snapshot, out, issues } = decodeOne(reader)
  t.same(issues, [])
  t.equal(snapshot.volume, 0, 'volume 0 is a value')
  t.equal(snapshot.fundingRate, 0, 'funding_rate 0 is a value')
  t.ok(Number.isNaN(snapshot.bidVolume), 'null is missing')
  t.ok(Number.isNaN(snapshot.askVolume), 'NaN is sent as missing, as JSON.stringify does')
  t.ok(Number.isNaN(snapshot.open), 'absent is missing')
  t.ok(Number.isNaN(snapshot.timestampMs))
  t.equal(out.symbol, null, 'no symbol: the server default')
  t.ok(Number.isNaN(out.deadlineMs))
})

t.test('PredictRequest: the validation rules are the HTTP ones', async (t) => {
  const codec = new FbClientCodec()
  const reader = new FbFrameReader()
  const cases: Array<[string, PredictionRequest, string, string]> = [
    ['missing price', { price: Number.NaN }, 'price', 'value_error.missing'],
    ['negative price', { price: -1 }, 'price', 'value_error.number.not_gt'],
    ['infinite volume', { price: 1, volume: Number.POSITIVE_INFINITY }, 'volume', 'value_error.number.not_finite'],
    ['negative volume', { price: 1, volume: -2 }, 'volume', 'value_error.number.not_ge'],
    ['bad symbol', { price: 1, symbol: 'BTC/USDT' }, 'symbol', 'value_error.str.regex'],
    ['empty symbol', { price: 1, symbol: '' }, 'symbol', 'value_error.str.regex'],
    ['fractional timestamp', { price: 1, timestamp_ms: 1.5 }, 'timestamp_ms', 'type_error.integer'],
    ['future timestamp', { price: 1, timestamp_ms: kNow + 3_600_000 }, 'timestamp_ms', 'value_error.timestamp.future'],
    ['zero deadline', { price: 1, deadline_ms: 0 }, 'deadline_ms', 'value_error.number.not_gt'],
  ]
  for (const [name, req, field, type] of cases) {
    const bytes = codec.request(3, req)
    t.equal(reader.open(bytes, 10), kFrameRequest, name)
    const { issues } = decodeOne(reader)
    t.match(issues, [{ loc: [field], type }], name)
  }
})

t.test('PredictBatch: items decoded in order with their ids; too long is refused', async (t) => {
  const codec = new FbClientCodec()
  const reader = new FbFrameReader()
  const reqs: PredictionRequest[] = [{ price: 1, symbol: 'A' }, { price: 2 }, { price: -3, symbol: 'C' }]
  const bytes = codec.batch(77, reqs)
  t.equal(reader.open(bytes, 10), kFrameBatch)
  t.equal(reader.id, 77)
  t.equal(reader.length, 3)
  const snapshot = new MarketSnapshot()
  const out: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }
  t.same(reader.decode(0, snapshot, out, kLimits, kNow, ['requests', 0]), [])
  t.equal(snapshot.price, 1)
  t.equal(out.symbol, 'A')
  t.equal(reader.itemId, 0)
  t.same(reader.decode(1, snapshot, out, kLimits, kNow, ['requests', 1]), [])
  t.equal(snapshot.price, 2)
  t.equal(out.symbol, null)
  t.equal(reader.itemId, 1)
  t.match(reader.decode(2, snapshot, out, kLimits, kNow, ['requests', 2]), [{ loc: ['requests', 2, 'price'] }])

  t.equal(reader.open(bytes, 2), kFrameInvalid, 'longer than max_batch_requests')
  t.equal(reader.id, 77)
  t.ok(reader.idKnown)
  t.match(reader.issues, [{ loc: ['requests'], type: 'value_error.list.max_items' }])

  t.equal(reader.open(codec.batch(5, []), 10), kFrameBatch, 'an empty batch is a batch')
  t.equal(reader.length, 0)
})

t.test('Prediction, ErrorResponse, BatchResult and Hello: server writer -> client decoder', async (t) => {
  const w = new FbWriter()
  t.same(decodeServerBinary(w.prediction(9, 0.7234567, 'xgb_v1', 'BNBUSDT', 0.41234, null)), {
    kind: 'prediction',
    id: 9,
    prediction: { direction: 'LONG', confidence: 0.723457, probability_long: 0.723457, model_version: 'xgb_v1', symbol: 'BNBUSDT', latency_ms: 0.412 },
  })
  const short = decodeServerBinary(w.prediction(10, 0.25, 'xgb_v1', 'X', 1, null))
  t.match(short, { kind: 'prediction', id: 10, prediction: { direction: 'SHORT', confidence: 0.75, probability_long: 0.25 } })

  const detail = [{ loc: ['price'], msg: 'field required', type: 'value_error.missing' }]
  const err = decodeServerBinary(w.error(11, true, 'INVALID_ARGUMENT', 'price: field required', JSON.stringify(detail)))
  t.equal(err.kind, 'error')
  if (err.kind === 'error') {
    t.equal(err.id, 11)
    t.equal(err.error.code, 'ERR_REMOTE')
    t.equal(err.error.wireCode, 'INVALID_ARGUMENT')
    t.same(err.error.detail, detail)
  }
  for (const code of ['MODEL_NOT_LOADED', 'OVERLOADED', 'DEADLINE_EXCEEDED', 'INTERNAL'] as const) {
    const e = decodeServerBinary(w.error(12, false, code, code, null))
    t.match(e, { kind: 'error', id: null, error: { wireCode: code, detail: null } }, code)
  }

  const src: BatchResultSource = {
    id: 13,
    size: 2,
    itemIds: Uint32Array.of(0, 1),
    failed: Uint8Array.of(0, 1),
    probability: Float64Array.of(0.4, 0),
    latencyMs: Float64Array.of(0.5, 0),
    symbols: ['A', ''],
    modelVersions: ['v', ''],
    components: [null, null],
    wireCodes: ['OVERLOADED', 'OVERLOADED'],
    messages: ['', 'Overloaded'],
    details: [null, null],
  }
  const batch = decodeServerBinary(w.batchResult(src))
  t.match(batch, {
    kind: 'batch',
    id: 13,
    results: [
      { ok: true, prediction: { direction: 'SHORT', confidence: 0.6, probability_long: 0.4, symbol: 'A', model_version: 'v' } },
      { ok: false, error: { wireCode: 'OVERLOADED' } },
    ],
  })

  const info = {
    modelVersion: 'xgb_v1', featureSetVersion: kFeatureSetVersion, features: kFeatureNames, maxInFlight: 1024,
    maxMessageBytes: 1 << 20, maxBatchRequests: 1000, defaultSymbol: 'WBNBUSDT',
  }
  const expectedHello = {
    protocol_version: kProtocolVersion, model_version: 'xgb_v1', feature_set_version: kFeatureSetVersion,
    features: [...kFeatureNames], max_in_flight: 1024, max_message_bytes: 1 << 20, max_batch_requests: 1000, default_symbol: 'WBNBUSDT',
  }
  t.same(decodeServerBinary(w.hello(info)), { kind: 'hello', hello: expectedHello })
  t.same(decodeServerBinary(w.hello({ ...info, modelVersion: null })), { kind: 'hello', hello: { ...expectedHello, model_version: null } })

  // The same messages as JSON text frames decode to the same values.
  t.same(decodeServerText(helloText(info)), { kind: 'hello', hello: expectedHello })
  t.same(decodeServerText(predictionText(9, 0.7234567, '"xgb_v1"', 'BNBUSDT', 0.41234, null)), decodeServerBinary(w.prediction(9, 0.7234567, 'xgb_v1', 'BNBUSDT', 0.41234, null)))
  t.match(decodeServerText(errorText(11, true, 'INVALID_ARGUMENT', 'm', JSON.stringify(detail))), { kind: 'error', id: 11, error: { wireCode: 'INVALID_ARGUMENT', detail } })
  t.match(decodeServerText(errorText(0, false, 'INTERNAL', 'm', null)), { kind: 'error', id: null })
  t.match(decodeServerText(batchResultText(src, ['"v"', '""'])), batch)
})

t.test('the Builder is reused: a result stays valid until the next encode only', async (t) => {
  const w = new FbWriter()
  const first = w.prediction(1, 0.6, 'v', 'A', 1, null)
  const copy = first.slice()
  w.prediction(2, 0.3, 'v', 'BBBBBBBB', 2, null)
  t.match(decodeServerBinary(copy), { id: 1 }, 'a copy taken before the next encode is intact')
})
