/**
 * The client's side of the /ws protocol (schemas/prediction.fbs): requests out, server messages
 * in, in FlatBuffers (binary frames) or JSON (text frames).
 *
 * Encoding reuses one Builder per client; the returned bytes are a view of it, valid until the
 * next encode. The `ws` library copies a Uint8Array while masking it on send, so the next encode
 * may reuse the Builder at once.
 */
import * as flatbuffers from 'flatbuffers'
import type { WireCode } from '../errors.js'
import {
  BatchItem, BatchResult, Body, Direction, ErrorCode, ErrorResponse, Hello, Message, PredictBatch,
  PredictRequest, Prediction as FbPrediction,
} from '../protocol/generated/prediction_generated.js'
import { RemoteError } from './errors.js'

/** One market snapshot, with the HTTP API's field names (CONTRACT.md). */
export interface PredictionRequest {
  /** Latest trade price; finite and > 0. */
  price: number
  open?: number | null
  high?: number | null
  low?: number | null
  volume?: number | null
  bid_volume?: number | null
  ask_volume?: number | null
  best_bid?: number | null
  best_ask?: number | null
  bid_depth_5?: number | null
  ask_depth_5?: number | null
  btc_price?: number | null
  funding_rate?: number | null
  /** Absent: the server's default symbol. */
  symbol?: string | null
  /** Event time in epoch ms (integer); absent: the server's receive time. */
  timestamp_ms?: number | null
  /** Shortens the server's deadline for this request (ms). */
  deadline_ms?: number | null
}

/** The contract's answer, as over HTTP. */
export interface Prediction {
  direction: 'LONG' | 'SHORT'
  /** max(p, 1 - p), in [0.5, 1]. */
  confidence: number
  probability_long: number
  model_version: string
  symbol: string
  /** The server's own time for the request. */
  latency_ms: number
}

/** One item of a batch answer: a prediction, or the server's error for that item. */
export type PredictionResult =
  | { readonly ok: true, readonly prediction: Prediction }
  | { readonly ok: false, readonly error: RemoteError }

/** What the server announces on connect. */
export interface ServerHello {
  protocol_version: number
  /** null while the server has no model loaded. */
  model_version: string | null
  feature_set_version: string
  features: string[]
  max_in_flight: number
  max_message_bytes: number
  max_batch_requests: number
  default_symbol: string
}

/** A decoded server message. */
export type ServerMessage =
  | { readonly kind: 'prediction', readonly id: number, readonly prediction: Prediction }
  | { readonly kind: 'error', readonly id: number | null, readonly error: RemoteError }
  | { readonly kind: 'batch', readonly id: number, readonly results: PredictionResult[] }
  | { readonly kind: 'hello', readonly hello: ServerHello }

type NumericKey = Exclude<keyof PredictionRequest, 'symbol'>

const kFbToWire: readonly WireCode[] = ['INVALID_ARGUMENT', 'MODEL_NOT_LOADED', 'OVERLOADED', 'DEADLINE_EXCEEDED', 'INTERNAL']
const kWireCodes: ReadonlySet<string> = new Set(kFbToWire)

/** NaN and null/undefined are all "missing" (JSON.stringify turns NaN into null the same way). */
function present (v: number | null | undefined): v is number {
  return v !== null && v !== undefined && !Number.isNaN(v)
}

/** The schema's adder per field: written only when present, so "missing" stays missing. */
const kAdders: ReadonlyArray<readonly [NumericKey, (b: flatbuffers.Builder, v: number) => void]> = [
  ['price', PredictRequest.addPrice],
  ['open', PredictRequest.addOpen],
  ['high', PredictRequest.addHigh],
  ['low', PredictRequest.addLow],
  ['volume', PredictRequest.addVolume],
  ['bid_volume', PredictRequest.addBidVolume],
  ['ask_volume', PredictRequest.addAskVolume],
  ['best_bid', PredictRequest.addBestBid],
  ['best_ask', PredictRequest.addBestAsk],
  ['bid_depth_5', PredictRequest.addBidDepth5],
  ['ask_depth_5', PredictRequest.addAskDepth5],
  ['btc_price', PredictRequest.addBtcPrice],
  ['funding_rate', PredictRequest.addFundingRate],
  ['timestamp_ms', PredictRequest.addTimestampMs],
  ['deadline_ms', PredictRequest.addDeadlineMs],
]

export class FbClientCodec {
  private readonly builder = new flatbuffers.Builder(512)
  private readonly offsets: number[] = []

  /** A Message holding one PredictRequest. */
  request (id: number, req: PredictionRequest): Uint8Array {
    const b = this.builder
    b.clear()
    const body = this.writeRequest(id, req)
    Message.finishMessageBuffer(b, Message.createMessage(b, Body.PredictRequest, body))
    return b.asUint8Array()
  }

  /** A Message holding a PredictBatch; item i carries id i. */
  batch (id: number, reqs: readonly PredictionRequest[]): Uint8Array {
    const b = this.builder
    b.clear()
    const offsets = this.offsets
    offsets.length = reqs.length
    for (let i = 0; i < reqs.length; i++) offsets[i] = this.writeRequest(i, reqs[i]!)
    const vector = PredictBatch.createRequestsVector(b, offsets)
    offsets.length = 0
    PredictBatch.startPredictBatch(b)
    PredictBatch.addId(b, id)
    PredictBatch.addRequests(b, vector)
    const body = PredictBatch.endPredictBatch(b)
    Message.finishMessageBuffer(b, Message.createMessage(b, Body.PredictBatch, body))
    return b.asUint8Array()
  }

  private writeRequest (id: number, req: PredictionRequest): number {
    const b = this.builder
    const symbol = typeof req.symbol === 'string' ? b.createString(req.symbol) : 0
    PredictRequest.startPredictRequest(b)
    PredictRequest.addId(b, id)
    for (let i = 0; i < kAdders.length; i++) {
      const [key, add] = kAdders[i]!
      const v = req[key]
      if (present(v)) add(b, v)
    }
    if (symbol !== 0) PredictRequest.addSymbol(b, symbol)
    return PredictRequest.endPredictRequest(b)
  }
}

function readPrediction (p: FbPrediction): Prediction {
  return {
    direction: p.direction() === Direction.LONG ? 'LONG' : 'SHORT',
    confidence: p.confidence(),
    probability_long: p.probabilityLong(),
    model_version: p.modelVersion() ?? '',
    symbol: p.symbol() ?? '',
    latency_ms: p.latencyMs(),
  }
}

function readError (e: ErrorResponse): RemoteError {
  const detailJson = e.detailJson()
  let detail: unknown = null
  if (detailJson !== null) {
    try { detail = JSON.parse(detailJson) } catch { detail = detailJson /* kept as text: still informative */ }
  }
  return new RemoteError(kFbToWire[e.code()] ?? 'INTERNAL', e.message() ?? '', detail)
}

/** Decodes a binary frame from the server; throws on a frame that is not a Message. */
export function decodeServerBinary (bytes: Uint8Array): ServerMessage {
  const bb = new flatbuffers.ByteBuffer(bytes)
  if (bytes.length < 12 || !Message.bufferHasIdentifier(bb)) throw new Error('not a prediction-protocol Message')
  const msg = Message.getRootAsMessage(bb)
  switch (msg.bodyType()) {
    case Body.Prediction: {
      const p = msg.body(new FbPrediction()) as FbPrediction
      return { kind: 'prediction', id: p.id(), prediction: readPrediction(p) }
    }
    case Body.ErrorResponse: {
      const e = msg.body(new ErrorResponse()) as ErrorResponse
      return { kind: 'error', id: e.idKnown() ? e.id() : null, error: readError(e) }
    }
    case Body.BatchResult: {
      const r = msg.body(new BatchResult()) as BatchResult
      const n = r.itemsLength()
      const results = new Array<PredictionResult>(n)
      const item = new BatchItem()
      const p = new FbPrediction()
      const e = new ErrorResponse()
      for (let i = 0; i < n; i++) {
        r.items(i, item)
        const prediction = item.prediction(p)
        results[i] = prediction !== null
          ? { ok: true, prediction: readPrediction(prediction) }
          : { ok: false, error: readError(item.error(e) ?? e) }
      }
      return { kind: 'batch', id: r.id(), results }
    }
    case Body.Hello: {
      const h = msg.body(new Hello()) as Hello
      const features: string[] = []
      for (let i = 0; i < h.featuresLength(); i++) features.push(h.features(i))
      return {
        kind: 'hello',
        hello: {
          protocol_version: h.protocolVersion(),
          model_version: h.modelVersion(),
          feature_set_version: h.featureSetVersion() ?? '',
          features,
          max_in_flight: h.maxInFlight(),
          max_message_bytes: h.maxMessageBytes(),
          max_batch_requests: h.maxBatchRequests(),
          default_symbol: h.defaultSymbol() ?? '',
        },
      }
    }
    default:
      throw new Error(`unexpected message type ${msg.bodyType()} from the server`)
  }
}

// ------------------------------------------------------------------------------------------------
// JSON text frames
// ------------------------------------------------------------------------------------------------

export function requestText (id: number, req: PredictionRequest): string {
  return JSON.stringify({ ...req, type: 'predict_request', id })
}

export function batchText (id: number, reqs: readonly PredictionRequest[]): string {
  return JSON.stringify({ type: 'predict_batch', id, requests: reqs.map((r, i) => ({ ...r, id: i })) })
}

function toPrediction (o: Record<string, unknown>): Prediction {
  return {
    direction: o.direction === 'LONG' ? 'LONG' : 'SHORT',
    confidence: Number(o.confidence),
    probability_long: Number(o.probability_long),
    model_version: String(o.model_version),
    symbol: String(o.symbol),
    latency_ms: Number(o.latency_ms),
  }
}

function toRemoteError (o: Record<string, unknown>): RemoteError {
  const code = typeof o.code === 'string' && kWireCodes.has(o.code) ? o.code as WireCode : 'INTERNAL'
  return new RemoteError(code, typeof o.message === 'string' ? o.message : '', o.detail ?? null)
}

/** Decodes a text frame from the server; throws on anything that is not one of its messages. */
export function decodeServerText (text: string): ServerMessage {
  const o = JSON.parse(text) as Record<string, unknown>
  switch (o.type) {
    case 'prediction': return { kind: 'prediction', id: Number(o.id), prediction: toPrediction(o) }
    case 'error': return { kind: 'error', id: typeof o.id === 'number' ? o.id : null, error: toRemoteError(o) }
    case 'batch_result': {
      const items = Array.isArray(o.items) ? o.items as Array<Record<string, unknown>> : []
      return {
        kind: 'batch',
        id: Number(o.id),
        results: items.map((it) => it.type === 'prediction'
          ? { ok: true, prediction: toPrediction(it) } as const
          : { ok: false, error: toRemoteError(it) } as const),
      }
    }
    case 'hello':
      return {
        kind: 'hello',
        hello: {
          protocol_version: Number(o.protocol_version),
          model_version: typeof o.model_version === 'string' ? o.model_version : null,
          feature_set_version: String(o.feature_set_version),
          features: Array.isArray(o.features) ? o.features.map(String) : [],
          max_in_flight: Number(o.max_in_flight),
          max_message_bytes: Number(o.max_message_bytes),
          max_batch_requests: Number(o.max_batch_requests),
          default_symbol: String(o.default_symbol),
        },
      }
    default: throw new Error(`unexpected message type ${JSON.stringify(o.type)} from the server`)
  }
}

/** Maps a wire code carried as the FlatBuffers enum (for tests and other decoders). */
export function wireCodeOf (code: ErrorCode): WireCode { return kFbToWire[code] ?? 'INTERNAL' }
