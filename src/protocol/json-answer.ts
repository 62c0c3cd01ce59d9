/**
 * Answers as JSON, both ends: the server's encoders (HTTP bodies and /ws text frames) and the
 * client's decoders of them.
 *
 * A /ws text frame carries `type` ("prediction", "error", "batch_result", "hello") and the same
 * fields as the binary messages; a prediction is byte-for-byte the HTTP answer with `type` and
 * `id` in front. Hot-path answers are built by concatenation in a fixed field order (no object
 * built and stringified per answer).
 */
import { kErrorTable, type ErrorCode, type ValidationIssue, type WireCode } from '../errors.js'
import { isLong, round3, round6, wireConfidence } from './answer-values.js'
import {
  kProtocolVersion, type BatchResultSource, type ComponentSource, type ComponentStatus, type HelloInfo,
  type Prediction, type PredictionComponent, type PredictionResult, type RemoteErrorFactory, type ServerMessage,
} from './messages.js'
import { wireCodeOfStatus, wireCodeOfText } from './wire-codes.js'

// ---------------------------------------------------------------------------------------------
// The server's side
// ---------------------------------------------------------------------------------------------

/**
 * The contract's prediction object: the /predict answer and a /predict/batch item. `symbol` was
 * validated to [A-Za-z0-9_-] and `modelVersionJson` is pre-escaped (PendingRequest.modelVersionJson),
 * so nothing is escaped here. One template, no intermediate string (measured: a nested
 * fields-string cost ~10% more per answer).
 */
export function predictionJson (
  probability: number, modelVersionJson: string, symbol: string, latencyMs: number, components: readonly ComponentSource[] | null,
): string {
  const p = round6(probability)
  return `{"direction":"${isLong(probability) ? 'LONG' : 'SHORT'}","confidence":${wireConfidence(probability, p)},"probability_long":${p},"model_version":${modelVersionJson},"symbol":"${symbol}","latency_ms":${round3(latencyMs)}${components === null ? '' : componentsJson(components)}}`
}

/** Each status as its JSON string (a closed set: nothing from outside reaches the answer unescaped). */
const kStatusJson: Readonly<Record<ComponentStatus, string>> = { used: '"used"', no_history: '"no_history"', failed: '"failed"' }

/**
 * `,"components":[...]`, appended after a model set's answer's own fields (never written for a
 * single model, whose answer stays the phase-1 one byte for byte). A left-out member's
 * probability is NaN: it is written as null, and so is any non-finite value (JSON has no NaN);
 * a non-finite weight, which the combiner never makes, is written as 0 for the same reason.
 */
function componentsJson (components: readonly ComponentSource[]): string {
  let out = ',"components":['
  for (let i = 0; i < components.length; i++) {
    const c = components[i]!
    if (i > 0) out += ','
    out += `{"model_version":${c.modelVersionJson},"probability_long":${Number.isFinite(c.probability) ? round6(c.probability) : 'null'},"weight":${Number.isFinite(c.weight) ? round6(c.weight) : 0},"status":${kStatusJson[c.status] ?? '"failed"'}}`
  }
  return `${out}]`
}

/** `{"detail": "<message>"}`, FastAPI's error body. */
export function errorDetailJson (message: string): string { return JSON.stringify({ detail: message }) }

/** `{"detail": [issues]}`, FastAPI's 422 body. */
export function validationDetailJson (issues: readonly ValidationIssue[]): string { return JSON.stringify({ detail: issues }) }

/** What a /predict/batch answer reads besides the shared batch outcome. */
export interface HttpBatchSource extends BatchResultSource {
  /** Registry code of each failed item: its HTTP status. */
  readonly codes: ErrorCode[]
  readonly modelVersionsJson: string[]
}

/**
 * Item of a /predict/batch answer that failed: its wire code, HTTP status and FastAPI detail
 * (`detailJson`, the issues of a validation failure, else the code's default message).
 */
function httpItemErrorJson (code: ErrorCode, detailJson: string | null): string {
  const spec = kErrorTable[code]
  return `{"error":${JSON.stringify(spec.wireCode ?? 'INTERNAL')},"status_code":${spec.statusCode},"detail":${detailJson ?? JSON.stringify(spec.message)}}`
}

/** The /predict/batch answer, `{"predictions": [...]}`, one item per request in order. */
export function httpBatchJson (src: HttpBatchSource): string {
  let out = '{"predictions":['
  for (let i = 0; i < src.size; i++) {
    if (i > 0) out += ','
    out += src.failed[i] === 0
      ? predictionJson(src.probability[i]!, src.modelVersionsJson[i]!, src.symbols[i]!, src.latencyMs[i]!, src.components[i] ?? null)
      : httpItemErrorJson(src.codes[i]!, src.details[i] ?? null)
  }
  return `${out}]}`
}

/** A prediction text frame: the HTTP answer with `type` and `id` in front (same fields, same order). */
export function predictionText (
  id: number, probability: number, modelVersionJson: string, symbol: string, latencyMs: number, components: readonly ComponentSource[] | null,
): string {
  const p = round6(probability)
  return `{"type":"prediction","id":${id},"direction":"${isLong(probability) ? 'LONG' : 'SHORT'}","confidence":${wireConfidence(probability, p)},"probability_long":${p},"model_version":${modelVersionJson},"symbol":"${symbol}","latency_ms":${round3(latencyMs)}${components === null ? '' : componentsJson(components)}}`
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
      ? predictionText(src.itemIds[i]!, src.probability[i]!, modelVersionsJson[i]!, src.symbols[i]!, src.latencyMs[i]!, src.components[i] ?? null)
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

// ---------------------------------------------------------------------------------------------
// The client's side
// ---------------------------------------------------------------------------------------------

function toPrediction (o: Record<string, unknown>): Prediction {
  const prediction: Prediction = {
    direction: o.direction === 'LONG' ? 'LONG' : 'SHORT',
    confidence: Number(o.confidence),
    probability_long: Number(o.probability_long),
    model_version: String(o.model_version),
    symbol: String(o.symbol),
    latency_ms: Number(o.latency_ms),
  }
  // Only a model set's answer has the key; a single model's prediction keeps the phase-1 shape.
  if (Array.isArray(o.components)) prediction.components = (o.components as Array<Record<string, unknown>>).map(toComponent)
  return prediction
}

const kStatuses: readonly ComponentStatus[] = ['used', 'no_history', 'failed']

/** A `components` item; a status this client does not know (a newer server's) reads as `failed`: the member was not used. */
function toComponent (o: Record<string, unknown>): PredictionComponent {
  return {
    model_version: String(o.model_version),
    probability_long: typeof o.probability_long === 'number' ? o.probability_long : null,
    weight: Number(o.weight),
    status: kStatuses.includes(o.status as ComponentStatus) ? o.status as ComponentStatus : 'failed',
  }
}

function textError<E> (o: Record<string, unknown>, makeError: RemoteErrorFactory<E>): E {
  return makeError(wireCodeOfText(o.code), typeof o.message === 'string' ? o.message : '', o.detail ?? null, null)
}

/** Decodes a /ws text frame from the server; throws on anything that is not one of its messages. */
export function decodeServerText<E> (text: string, makeError: RemoteErrorFactory<E>): ServerMessage<E> {
  const o = JSON.parse(text) as Record<string, unknown>
  switch (o.type) {
    case 'prediction': return { kind: 'prediction', id: Number(o.id), prediction: toPrediction(o) }
    case 'error': return { kind: 'error', id: typeof o.id === 'number' ? o.id : null, error: textError(o, makeError) }
    case 'batch_result': {
      const items = Array.isArray(o.items) ? o.items as Array<Record<string, unknown>> : []
      return {
        kind: 'batch',
        id: Number(o.id),
        results: items.map((it) => it.type === 'prediction'
          ? { ok: true, prediction: toPrediction(it) } as const
          : { ok: false, error: textError(it, makeError) } as const),
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

/** A one-line message for a FastAPI `detail`: the string, or the first issue as `loc: msg`. */
function detailMessage (detail: unknown): string {
  if (typeof detail === 'string') return detail
  if (Array.isArray(detail) && detail.length > 0) {
    const d = detail[0] as { loc?: unknown[], msg?: string }
    return `${Array.isArray(d.loc) ? d.loc.join('.') : ''}: ${d.msg ?? 'invalid'}`
  }
  return 'error'
}

/** The error of an HTTP answer that is not 200 (`body` parsed as JSON when it was JSON). */
export function decodeHttpError<E> (status: number, body: unknown, makeError: RemoteErrorFactory<E>): E {
  const detail = (body as { detail?: unknown } | null)?.detail ?? null
  return makeError(wireCodeOfStatus(status, detail), detailMessage(detail), Array.isArray(detail) ? detail : null, status)
}

/** The items of a 200 /predict/batch answer. */
export function decodeHttpBatch<E> (body: unknown, makeError: RemoteErrorFactory<E>): Array<PredictionResult<E>> {
  const items = (body as { predictions: Array<Record<string, unknown>> }).predictions
  return items.map((it) => {
    if (typeof it.error !== 'string') return { ok: true, prediction: it as unknown as Prediction } as const
    const statusCode = typeof it.status_code === 'number' ? it.status_code : null
    return { ok: false, error: makeError(it.error as WireCode, detailMessage(it.detail), Array.isArray(it.detail) ? it.detail : null, statusCode) } as const
  })
}
