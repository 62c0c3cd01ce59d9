/**
 * The protocol's messages as values: what a client sends (PredictionRequest), what the server
 * answers (Prediction, errors, batch results, the hello), in the HTTP API's field names
 * (CONTRACT.md). Shared by the server's codecs and the client library; no runtime imports, so
 * the client loads nothing of the server.
 */
import type { WireCode } from '../errors.js'

/** Bumped when a schema change is not purely additive. Sent in the Hello. */
export const kProtocolVersion = 1
export const kFileIdentifier = 'MLPS'

/** What the server's frame readers (FlatBuffers and JSON) make of one frame. */
export const kFrameInvalid = 0
export const kFrameRequest = 1
export const kFrameBatch = 2
export type FrameKind = typeof kFrameInvalid | typeof kFrameRequest | typeof kFrameBatch

/** WebSocket text frames: the `type` a client gives a request and a batch. */
export const kTypeRequest = 'predict_request'
export const kTypeBatch = 'predict_batch'

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

/**
 * How a model set's member took part in an answer: `used` (in the weighted mean), `no_history`
 * (a windowed member whose symbol has too few bars) or `failed` (its worker failed); the last two
 * were left out (probability_long null, weight 0).
 */
export type ComponentStatus = 'used' | 'no_history' | 'failed'

/** One member's part in a model set's answer (Prediction.components). */
export interface PredictionComponent {
  model_version: string
  /** The member's P(up), rounded to 6 decimals; null when it was left out of this answer. */
  probability_long: number | null
  /** Its weight in this answer, renormalized over the members used (6 decimals); 0 when left out. */
  weight: number
  status: ComponentStatus
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
  /**
   * Only when a model set answered: each member's part, in the set's member order. Absent (not
   * even an empty list) when a single model answered.
   */
  components?: PredictionComponent[]
}

/** One item of a batch answer: a prediction, or the server's error for that item. */
export type PredictionResult<E> =
  | { readonly ok: true, readonly prediction: Prediction }
  | { readonly ok: false, readonly error: E }

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

/** A decoded server message; `E` is what the reader makes of an error (the client's RemoteError). */
export type ServerMessage<E> =
  | { readonly kind: 'prediction', readonly id: number, readonly prediction: Prediction }
  | { readonly kind: 'error', readonly id: number | null, readonly error: E }
  | { readonly kind: 'batch', readonly id: number, readonly results: Array<PredictionResult<E>> }
  | { readonly kind: 'hello', readonly hello: ServerHello }

/**
 * Builds the reader's error value from an error answer. `statusCode` is the HTTP status for an
 * answer read from HTTP, else null.
 */
export type RemoteErrorFactory<E> = (wireCode: WireCode, message: string, detail: unknown, statusCode: number | null) => E

/** The server's side of a hello, before it is encoded. */
export interface HelloInfo {
  readonly modelVersion: string | null
  readonly featureSetVersion: string
  readonly features: readonly string[]
  readonly maxInFlight: number
  readonly maxMessageBytes: number
  readonly maxBatchRequests: number
  readonly defaultSymbol: string
}

/**
 * A member's part in an answer as the server holds it (the batcher's Component,
 * src/batching/pending-request.ts, has this shape): `modelVersionJson` is the pre-escaped JSON
 * string of `modelVersion`, `probability` NaN and `weight` 0 when the member was left out.
 */
export interface ComponentSource {
  readonly modelVersion: string
  readonly modelVersionJson: string
  readonly probability: number
  readonly weight: number
  readonly status: ComponentStatus
}

/** Outcome of every item of one batch, as the server keeps it until the whole batch is answered. */
export interface BatchResultSource {
  readonly id: number
  readonly size: number
  readonly itemIds: Uint32Array
  /** 0: a prediction; otherwise the item failed with `wireCodes[i]`. */
  readonly failed: Uint8Array
  readonly probability: Float64Array
  readonly latencyMs: Float64Array
  readonly symbols: string[]
  readonly modelVersions: string[]
  /** A model set's members' parts in item i's answer; null for a single model's answer (and for failed items). */
  readonly components: ReadonlyArray<readonly ComponentSource[] | null>
  readonly wireCodes: WireCode[]
  readonly messages: string[]
  /** JSON of the item's FastAPI issues (validation), else null. */
  readonly details: Array<string | null>
}
