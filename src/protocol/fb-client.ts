/**
 * The client's side of the binary /ws protocol (schemas/prediction.fbs): requests out, server
 * messages in. (The server's side is fb-codec.ts; both share messages.ts and wire-codes.ts.)
 *
 * Encoding reuses one Builder per codec; the returned bytes are a view of it, valid until the
 * next encode. The `ws` library copies a Uint8Array while masking it on send, so the next encode
 * may reuse the Builder at once.
 */
import * as flatbuffers from 'flatbuffers'
import type {
  ComponentStatus as ComponentStatusName, PredictionComponent, PredictionRequest, PredictionResult, Prediction,
  RemoteErrorFactory, ServerMessage,
} from './messages.js'
import { wireCodeOfFb } from './wire-codes.js'
import {
  BatchItem, BatchResult, Body, Component, ComponentStatus, Direction, ErrorResponse, Hello, Message, PredictBatch,
  PredictRequest, Prediction as FbPrediction,
} from './generated/prediction_generated.js'

type NumericKey = Exclude<keyof PredictionRequest, 'symbol'>

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
  const prediction: Prediction = {
    direction: p.direction() === Direction.LONG ? 'LONG' : 'SHORT',
    confidence: p.confidence(),
    probability_long: p.probabilityLong(),
    model_version: p.modelVersion() ?? '',
    symbol: p.symbol() ?? '',
    latency_ms: p.latencyMs(),
  }
  // Absent field (a single model's answer, or a server older than model sets): no key, as in JSON.
  const n = p.componentsLength()
  if (hasComponents(p)) {
    const components = new Array<PredictionComponent>(n)
    const c = new Component()
    for (let i = 0; i < n; i++) components[i] = readComponent(p.components(i, c)!)
    prediction.components = components
  }
  return prediction
}

/** The field is present (possibly an empty vector): slot 18 is `components` (schema field 7). */
function hasComponents (p: FbPrediction): boolean {
  return p.bb !== null && p.bb.__offset(p.bb_pos, 18) !== 0
}

/** A status this client does not know (a newer server's) reads as `failed`: the member was not used. */
const kStatusNames: Readonly<Record<number, ComponentStatusName>> = {
  [ComponentStatus.USED]: 'used', [ComponentStatus.NO_HISTORY]: 'no_history', [ComponentStatus.FAILED]: 'failed',
}

function readComponent (c: Component): PredictionComponent {
  return {
    model_version: c.modelVersion() ?? '',
    probability_long: c.probabilityLong(),
    weight: c.weight(),
    status: kStatusNames[c.status()] ?? 'failed',
  }
}

function readError<E> (e: ErrorResponse, makeError: RemoteErrorFactory<E>): E {
  const detailJson = e.detailJson()
  let detail: unknown = null
  if (detailJson !== null) {
    try { detail = JSON.parse(detailJson) } catch { detail = detailJson /* kept as text: still informative */ }
  }
  return makeError(wireCodeOfFb(e.code()), e.message() ?? '', detail, null)
}

/** Decodes a binary frame from the server; throws on a frame that is not a Message. */
export function decodeServerBinary<E> (bytes: Uint8Array, makeError: RemoteErrorFactory<E>): ServerMessage<E> {
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
      return { kind: 'error', id: e.idKnown() ? e.id() : null, error: readError(e, makeError) }
    }
    case Body.BatchResult: {
      const r = msg.body(new BatchResult()) as BatchResult
      const n = r.itemsLength()
      const results = new Array<PredictionResult<E>>(n)
      const item = new BatchItem()
      const p = new FbPrediction()
      const e = new ErrorResponse()
      for (let i = 0; i < n; i++) {
        r.items(i, item)
        const prediction = item.prediction(p)
        results[i] = prediction !== null
          ? { ok: true, prediction: readPrediction(prediction) }
          : { ok: false, error: readError(item.error(e) ?? e, makeError) }
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
