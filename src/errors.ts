/**
 * Every failure the service can report, defined once: a stable code, a default message, the HTTP
 * status, the wire code the WebSocket protocol uses, and extra headers where the contract wants
 * them (Retry-After on overload). Transports look errors up here; they never pick a status ad hoc.
 *
 * Consumers should test `err.code`, not `instanceof`: the client library may be installed twice.
 *
 * Expected outcomes on the hot path (shedding, deadline expiry) are not built as Error objects per
 * request; the transport writes the prebuilt answer for the code (see `kErrorTable`).
 */

export type WireCode =
  | 'INVALID_ARGUMENT'
  | 'MODEL_NOT_LOADED'
  | 'OVERLOADED'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL'

export interface ErrorSpec {
  readonly statusCode: number
  readonly wireCode: WireCode | null
  readonly message: string
  readonly headers: Readonly<Record<string, string>> | null
}

/** The one mapping table: code -> HTTP status, wire code, default message, headers. */
export const kErrorTable = {
  ERR_INVALID_JSON: { statusCode: 400, wireCode: 'INVALID_ARGUMENT', message: 'Body is not valid JSON', headers: null },
  ERR_VALIDATION: { statusCode: 422, wireCode: 'INVALID_ARGUMENT', message: 'Request is invalid', headers: null },
  // WebSocket only: a binary frame that is not a readable Message; answered, the socket stays open.
  ERR_PROTOCOL: { statusCode: 400, wireCode: 'INVALID_ARGUMENT', message: 'Frame is not a readable message', headers: null },
  // The rest of an oversized body may still be in flight: the connection is closed after the 413.
  ERR_BODY_TOO_LARGE: { statusCode: 413, wireCode: 'INVALID_ARGUMENT', message: 'Request body too large', headers: { Connection: 'close' } },
  // HTTP framing the server cannot trust (RFC 9112 §6.3: differing Content-Length values); closed.
  ERR_BAD_FRAMING: { statusCode: 400, wireCode: null, message: 'Conflicting Content-Length headers', headers: { Connection: 'close' } },
  ERR_NOT_FOUND: { statusCode: 404, wireCode: null, message: 'Not Found', headers: null },
  ERR_METHOD_NOT_ALLOWED: { statusCode: 405, wireCode: null, message: 'Method Not Allowed', headers: null },
  ERR_UNAUTHORIZED: { statusCode: 401, wireCode: null, message: 'Unauthorized', headers: { 'WWW-Authenticate': 'Bearer' } },
  ERR_MODEL_NOT_LOADED: { statusCode: 503, wireCode: 'MODEL_NOT_LOADED', message: 'Model not loaded', headers: null },
  ERR_OVERLOADED: { statusCode: 503, wireCode: 'OVERLOADED', message: 'Overloaded', headers: { 'Retry-After': '1' } },
  ERR_SHUTTING_DOWN: { statusCode: 503, wireCode: 'OVERLOADED', message: 'Shutting down', headers: { 'Retry-After': '1', Connection: 'close' } },
  ERR_DEADLINE_EXCEEDED: { statusCode: 504, wireCode: 'DEADLINE_EXCEEDED', message: 'Deadline exceeded', headers: null },
  ERR_INFERENCE: { statusCode: 500, wireCode: 'INTERNAL', message: 'Inference failed', headers: null },
  ERR_INTERNAL: { statusCode: 500, wireCode: 'INTERNAL', message: 'Internal server error', headers: null },
  ERR_CONFIG_INVALID: { statusCode: 500, wireCode: null, message: 'Configuration is invalid', headers: null },
  ERR_MODEL_INCOMPATIBLE: { statusCode: 500, wireCode: null, message: 'Model is incompatible with the feature schema', headers: null },
  ERR_MODEL_LOAD: { statusCode: 500, wireCode: null, message: 'Model could not be loaded', headers: null },
  // Never answered to a client: start-up logs it once and goes on with no feature history.
  ERR_STATE_FILE: { statusCode: 500, wireCode: null, message: 'Feature state file refused', headers: null },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof kErrorTable

/**
 * The codes a request to the service's API can be answered with: the prediction transports
 * (HTTP /predict*, /ws) and the router (404, 405). These, and only these, have a counter in
 * `/metrics` (`errors_by_code`, `ml_prediction_errors_total`). Left out, because no request
 * is answered with them: ERR_CONFIG_INVALID (start-up), ERR_MODEL_LOAD and
 * ERR_MODEL_INCOMPATIBLE (start-up and model reloads, counted by `ml_model_reloads_total`), and
 * ERR_UNAUTHORIZED (the /admin routes, which are not the prediction API and are not counted).
 */
export const kRequestErrorCodes = [
  'ERR_INVALID_JSON', 'ERR_VALIDATION', 'ERR_PROTOCOL', 'ERR_BODY_TOO_LARGE', 'ERR_NOT_FOUND',
  'ERR_METHOD_NOT_ALLOWED', 'ERR_MODEL_NOT_LOADED', 'ERR_OVERLOADED', 'ERR_SHUTTING_DOWN',
  'ERR_DEADLINE_EXCEEDED', 'ERR_INFERENCE', 'ERR_INTERNAL', 'ERR_BAD_FRAMING',
] as const satisfies readonly ErrorCode[]

export type RequestErrorCode = typeof kRequestErrorCodes[number]

export class ServiceError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly wireCode: WireCode | null
  readonly headers: Readonly<Record<string, string>> | null

  constructor (code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = kErrorTable[code]
    super(message ?? spec.message, options)
    this.name = new.target.name
    this.code = code
    this.statusCode = spec.statusCode
    this.wireCode = spec.wireCode
    this.headers = spec.headers
  }
}

/** One entry of FastAPI's 422 `detail` list. */
export interface ValidationIssue {
  readonly loc: ReadonlyArray<string | number>
  readonly msg: string
  readonly type: string
}

export class InferenceError extends ServiceError {
  constructor (message?: string, cause?: unknown) { super('ERR_INFERENCE', message, { cause }) }
}

/** Start-up configuration problems; `problems` lists every bad setting with where it came from. */
export class ConfigError extends ServiceError {
  readonly problems: readonly string[]
  constructor (problems: readonly string[]) {
    super('ERR_CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.problems = problems
  }
}

export class ModelIncompatibleError extends ServiceError {
  constructor (message: string) { super('ERR_MODEL_INCOMPATIBLE', message) }
}

export class ModelLoadError extends ServiceError {
  constructor (message: string, cause?: unknown) { super('ERR_MODEL_LOAD', message, { cause }) }
}

/** Why a state file was refused: a stable word for logs and alerts, beside the message. */
export type StateFileReason =
  | 'unreadable' | 'too_large' | 'truncated' | 'checksum' | 'bad_magic' | 'format_version'
  | 'byte_order' | 'feature_set_version' | 'bar_ms' | 'record_layout' | 'bad_record'

export class StateFileError extends ServiceError {
  readonly reason: StateFileReason
  constructor (reason: StateFileReason, message: string, cause?: unknown) {
    super('ERR_STATE_FILE', message, { cause })
    this.reason = reason
  }
}
