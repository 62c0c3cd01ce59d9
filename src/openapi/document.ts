/**
 * The machine-readable description of the service: an OpenAPI 3.1 document for the HTTP routes
 * and an AsyncAPI 3.0 document for /ws, both GENERATED from the tables the code itself runs on:
 *
 * - request fields, bounds and nullability: `kNumericFields`, `kSymbolPattern` (the validator's table);
 * - validation issue types: `kIssue` (what the validator writes into `detail`);
 * - every error answer, its status, message and headers (Retry-After, WWW-Authenticate):
 *   `kErrorTable` (what the transports write);
 * - limits that depend on the configuration (batch length, body size): the running `Config`.
 *
 * So the document cannot drift from the validator or the error registry; a test checks every answer
 * the real server gives against it (test/openapi/). Nothing here imports uWS or onnxruntime.
 */
import { kErrorTable, kRequestErrorCodes, type ErrorCode } from '../errors.js'
import { kFeatureNames, kFeatureSetVersion } from '../features/feature-spec.js'
import { kIssue, kNumericFields, kSymbolPattern } from '../protocol/request-fields.js'

type Json = Record<string, unknown>

export interface ApiDocumentOptions {
  /** Package version, shown as info.version. */
  readonly version: string
  readonly maxBatchRequests: number
  readonly maxBodyBytes: number
  readonly defaultSymbol: string
  /** Whether /admin/* is enabled on this server (admin_token set); the paths are documented either way. */
  readonly adminEnabled: boolean
}

/** A response's error codes: all of them share the route's answer for their status. */
type ErrorCodes = readonly ErrorCode[]

/** The codes a body-reading prediction route can answer with (besides 200 and 405). */
const kPredictErrors: ErrorCodes = [
  'ERR_INVALID_JSON', 'ERR_BAD_FRAMING', 'ERR_BODY_TOO_LARGE', 'ERR_VALIDATION', 'ERR_MODEL_NOT_LOADED',
  'ERR_OVERLOADED', 'ERR_SHUTTING_DOWN', 'ERR_DEADLINE_EXCEEDED', 'ERR_INFERENCE', 'ERR_INTERNAL',
]
/** /predict/batch: per-item failures are inside the 200 answer; the whole batch fails only on these. */
const kBatchErrors: ErrorCodes = ['ERR_INVALID_JSON', 'ERR_BAD_FRAMING', 'ERR_BODY_TOO_LARGE', 'ERR_VALIDATION']
const kAdminErrors: ErrorCodes = ['ERR_UNAUTHORIZED', 'ERR_BAD_FRAMING', 'ERR_BODY_TOO_LARGE']

/**
 * One HTTP route: the same list the server registers (src/server/app.ts, docs-routes.ts); the
 * route test sends each method to each path and checks the server knows it.
 */
export interface RouteSpec {
  readonly method: 'get' | 'post' | 'delete'
  readonly path: string
  readonly operationId: string
  readonly summary: string
  readonly tag: 'predict' | 'health' | 'metrics' | 'admin' | 'docs'
}

export const kHttpRoutes: readonly RouteSpec[] = [
  { method: 'post', path: '/predict', operationId: 'predict', summary: 'One prediction for one market snapshot', tag: 'predict' },
  { method: 'post', path: '/predict/batch', operationId: 'predictBatch', summary: 'Predictions for a list of snapshots, answered item by item', tag: 'predict' },
  { method: 'get', path: '/health', operationId: 'health', summary: 'Service and model status (the old service\'s shape, extended)', tag: 'health' },
  { method: 'get', path: '/health/live', operationId: 'healthLive', summary: 'Liveness: the event loop answers', tag: 'health' },
  { method: 'get', path: '/health/ready', operationId: 'healthReady', summary: 'Readiness: predictions can be served now', tag: 'health' },
  { method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Latency percentiles, counters and model statistics (JSON)', tag: 'metrics' },
  { method: 'get', path: '/metrics/prometheus', operationId: 'metricsPrometheus', summary: 'The same metrics in Prometheus text format 0.0.4', tag: 'metrics' },
  { method: 'post', path: '/admin/reload', operationId: 'adminReload', summary: 'Reload the serving model, or swap in another file of the models folder', tag: 'admin' },
  { method: 'post', path: '/admin/shadow', operationId: 'adminShadowStart', summary: 'Score a candidate model beside the serving one', tag: 'admin' },
  { method: 'delete', path: '/admin/shadow', operationId: 'adminShadowStop', summary: 'Stop shadow scoring', tag: 'admin' },
  { method: 'get', path: '/openapi.json', operationId: 'openapi', summary: 'This document', tag: 'docs' },
  { method: 'get', path: '/asyncapi.json', operationId: 'asyncapi', summary: 'The /ws protocol as an AsyncAPI 3.0 document', tag: 'docs' },
  { method: 'get', path: '/schemas/prediction.fbs', operationId: 'flatbuffersSchema', summary: 'The FlatBuffers schema of /ws binary frames', tag: 'docs' },
  { method: 'get', path: '/docs', operationId: 'docs', summary: 'This API reference (Swagger UI, served offline)', tag: 'docs' },
]

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: Json): Json => ({ 'application/json': { schema } })

/** The validator's field table as a JSON Schema (null and absent mean "missing"; unknown keys are ignored). */
export function predictRequestSchema (defaultSymbol: string): Json {
  const properties: Record<string, Json> = {}
  const required: string[] = []
  for (const f of kNumericFields) {
    const schema: Json = { type: f.required ? 'number' : ['number', 'null'] }
    if (f.positive) schema.exclusiveMinimum = 0
    else if (f.nonNegative) schema.minimum = 0
    schema.description = `${f.required ? 'Required' : 'Optional (absent or null: missing)'}; finite${f.positive ? ', > 0' : f.nonNegative ? ', >= 0' : ''}.`
    properties[f.wire] = schema
    if (f.required) required.push(f.wire)
  }
  properties.symbol = {
    type: ['string', 'null'], pattern: kSymbolPattern.source,
    description: `Absent or null: the server's default_symbol (${defaultSymbol} here).`,
  }
  properties.timestamp_ms = {
    type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER,
    description: 'Event time, epoch ms; absent: arrival time. At most max_clock_skew_ms ahead of the server clock, and not in a bar older than the symbol\'s current one.',
  }
  properties.deadline_ms = {
    type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER,
    description: 'Shortens the server\'s deadline for this request (ms); it cannot lengthen it.',
  }
  return { type: 'object', properties, required, additionalProperties: true, description: 'One market snapshot. Unknown fields are ignored; numbers must be JSON numbers (strings are refused, not coerced).' }
}

const kIssueTypes = [...new Set([...Object.values(kIssue).map((i) => i.type), 'value_error.const'])]

function schemas (options: ApiDocumentOptions): Record<string, Json> {
  const wireCodes = [...new Set(Object.values(kErrorTable).map((s) => s.wireCode).filter((c) => c !== null))]
  const statusCodes = [...new Set(kRequestErrorCodes.map((c) => kErrorTable[c].statusCode))].sort()
  const summary: Json = {
    type: 'object',
    properties: Object.fromEntries(['p50', 'p90', 'p95', 'p99', 'p999', 'max', 'mean', 'count'].map((k) => [k, { type: ['number', 'null'] }])),
    required: ['count'],
  }
  const distributions = ['latency_ms', 'inference_ms', 'queue_wait_ms', 'batch_size']
  return {
    PredictRequest: predictRequestSchema(options.defaultSymbol),
    BatchRequest: {
      type: 'object',
      properties: { requests: { type: 'array', items: ref('PredictRequest'), maxItems: options.maxBatchRequests } },
      required: ['requests'],
      description: 'Each item is validated on its own: a bad item gets an error item in the answer, the rest are served.',
    },
    Prediction: {
      type: 'object',
      properties: {
        direction: { type: 'string', enum: ['LONG', 'SHORT'], description: 'LONG when probability_long >= 0.5.' },
        confidence: { type: 'number', minimum: 0.5, maximum: 1, description: 'max(p, 1 - p), 6 decimals.' },
        probability_long: { type: 'number', minimum: 0, maximum: 1, description: 'P(up-move), 6 decimals.' },
        model_version: { type: 'string' },
        symbol: { type: 'string', pattern: kSymbolPattern.source },
        latency_ms: { type: 'number', minimum: 0, description: 'Server time, body read to answer written.' },
        components: {
          type: 'array',
          items: ref('PredictionComponent'),
          description: 'Only when a model set answered: each member\'s part, in the set\'s member order; probability_long is their weighted mean. Absent for a single model.',
        },
      },
      required: ['direction', 'confidence', 'probability_long', 'model_version', 'symbol', 'latency_ms'],
      additionalProperties: false,
    },
    PredictionComponent: {
      type: 'object',
      properties: {
        model_version: { type: 'string' },
        probability_long: { type: ['number', 'null'], minimum: 0, maximum: 1, description: 'The member\'s P(up-move), 6 decimals; null when it was left out.' },
        weight: { type: 'number', minimum: 0, maximum: 1, description: 'Its weight in this answer, renormalized over the members used, 6 decimals; 0 when left out.' },
        status: {
          type: 'string',
          enum: ['used', 'no_history', 'failed'],
          description: 'used: in the weighted mean; no_history: its symbol has fewer bars than its input window; failed: its inference failed.',
        },
      },
      required: ['model_version', 'probability_long', 'weight', 'status'],
      additionalProperties: false,
    },
    BatchItemError: {
      type: 'object',
      properties: {
        error: { type: 'string', enum: wireCodes },
        status_code: { type: 'integer', enum: statusCodes, description: 'The status /predict would have answered for this item.' },
        detail: { oneOf: [{ type: 'string' }, { type: 'array', items: ref('ValidationIssue') }] },
      },
      required: ['error', 'status_code', 'detail'],
      additionalProperties: false,
    },
    BatchResponse: {
      type: 'object',
      properties: { predictions: { type: 'array', items: { oneOf: [ref('Prediction'), ref('BatchItemError')] }, description: 'predictions[i] answers requests[i].' } },
      required: ['predictions'],
      additionalProperties: false,
    },
    ValidationIssue: {
      type: 'object',
      properties: {
        loc: { type: 'array', items: { type: ['string', 'integer'] }, description: 'Path to the bad value, FastAPI\'s spelling (["body", "price"]).' },
        msg: { type: 'string' },
        type: { type: 'string', enum: kIssueTypes },
      },
      required: ['loc', 'msg', 'type'],
      additionalProperties: false,
    },
    ValidationErrorBody: {
      type: 'object',
      properties: { detail: { type: 'array', items: ref('ValidationIssue'), minItems: 1 } },
      required: ['detail'],
      additionalProperties: false,
    },
    ErrorBody: {
      type: 'object',
      properties: { detail: { type: 'string' } },
      required: ['detail'],
      additionalProperties: false,
      description: 'FastAPI\'s error shape. `detail` is the registry message of the code (see x-error-codes) or a more precise one.',
    },
    Health: {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['ok', 'unavailable', 'draining'] },
        model_loaded: { type: 'boolean' },
        model_version: { type: 'string', description: 'Empty while no model is loaded (never null: the bot decodes a String).' },
        uptime_seconds: { type: 'number', minimum: 0 },
        avg_latency_ms: { type: 'number', minimum: 0 },
        workers: { type: 'integer', minimum: 0 },
        queue_depth: { type: 'integer', minimum: 0 },
        in_flight: { type: 'integer', minimum: 0 },
        symbols: { type: 'integer', minimum: 0 },
        feature_set_version: { type: 'string', const: kFeatureSetVersion },
        predictions_total: { type: 'integer', minimum: 0 },
        errors_total: { type: 'integer', minimum: 0 },
        shutting_down: { type: 'boolean' },
        model_file: { type: 'string' },
        model_error: { type: ['string', 'null'], enum: [...Object.keys(kErrorTable), null] },
        model_path: { type: 'string', description: 'Only with the admin token.' },
        model_error_detail: { type: ['string', 'null'], description: 'Only with the admin token.' },
        last_reload_at: { type: ['string', 'null'] },
        reloads: { type: 'object', properties: { ok: { type: 'integer' }, failed: { type: 'integer' } }, required: ['ok', 'failed'] },
        shadow: { type: ['object', 'null'] },
        detail: { type: 'string' },
      },
      required: ['status', 'model_loaded', 'model_version', 'uptime_seconds', 'avg_latency_ms', 'workers', 'queue_depth',
        'in_flight', 'symbols', 'feature_set_version', 'predictions_total', 'errors_total', 'shutting_down'],
    },
    Live: { type: 'object', properties: { status: { const: 'alive' } }, required: ['status'], additionalProperties: false },
    Ready: {
      oneOf: [
        { type: 'object', properties: { status: { const: 'ready' }, model_version: { type: 'string' } }, required: ['status', 'model_version'], additionalProperties: false },
        { type: 'object', properties: { status: { const: 'not_ready' }, detail: { type: 'string' } }, required: ['status', 'detail'], additionalProperties: false },
      ],
    },
    LatencySummary: summary,
    Metrics: {
      type: 'object',
      properties: {
        ...Object.fromEntries(distributions.map((k) => [k, ref('LatencySummary')])),
        event_loop_delay_ms: ref('LatencySummary'),
        window_seconds: { type: 'number', minimum: 0 },
        lifetime: { type: 'object', properties: Object.fromEntries([...distributions, 'event_loop_delay_ms'].map((k) => [k, ref('LatencySummary')])), required: distributions },
        predictions_total: { type: 'integer', minimum: 0 },
        predictions_by_direction: { type: 'object', properties: { LONG: { type: 'integer' }, SHORT: { type: 'integer' } }, required: ['LONG', 'SHORT'] },
        errors_total: { type: 'integer', minimum: 0 },
        errors_by_code: { type: 'object', propertyNames: { enum: [...kRequestErrorCodes] }, additionalProperties: { type: 'integer', minimum: 1 } },
        confidence: {
          type: 'object',
          properties: { mean: { type: ['number', 'null'] }, buckets: { type: 'object', additionalProperties: { type: 'integer' } } },
          required: ['mean', 'buckets'],
        },
        uptime_seconds: { type: 'number', minimum: 0 },
        queue_depth: { type: ['integer', 'null'] },
        workers: { type: ['integer', 'null'] },
        model_version: { type: ['string', 'null'] },
        symbols: { type: ['integer', 'null'] },
        symbols_evicted: { type: ['integer', 'null'], description: 'Symbols dropped from the feature store since start to stay within max_symbols (least recently used first).' },
        model_reloads: {
          type: 'object',
          properties: { ok: { type: 'integer' }, failed: { type: 'integer' }, coalesced: { type: 'integer' } },
          required: ['ok', 'failed', 'coalesced'],
        },
        shadow: { type: ['object', 'null'], description: 'Shadow (candidate) model statistics while one is scored.' },
        model_set: { type: ['object', 'null'], additionalProperties: true, description: 'While a model set serves: set_version and, per member, model_version, input kind, weight, workers and the rows it answered (rows_used), could not answer (rows_no_history) or failed (rows_failed). Null for a single model.' },
        realized: { type: 'object', additionalProperties: true, description: 'Realized outcomes of served predictions per model version, over evaluation_window labelled bars and lifetime: hit rate, coverage and hit rate at evaluation_threshold, Brier score, log loss, standard errors (docs/monitoring.md).' },
        drift: { type: 'object', additionalProperties: true, description: 'Population stability index and NaN share per feature against the serving model\'s feature_reference, over drift_window rows; the top drifting features (docs/monitoring.md).' },
        capture: { type: ['object', 'null'], additionalProperties: true, description: 'capture_dir writer counters (rows written and dropped, bytes, files deleted, errors by code); null when capture is off.' },
      },
      required: [...distributions, 'window_seconds', 'lifetime', 'predictions_total', 'predictions_by_direction', 'errors_total',
        'errors_by_code', 'confidence', 'uptime_seconds', 'queue_depth', 'workers', 'model_version', 'symbols', 'symbols_evicted'],
      description: 'Distributions are over the last metrics_window_s; `lifetime` since start. Model reload and shadow statistics are added.',
    },
    ModelPathBody: {
      type: 'object',
      properties: { model_path: { type: ['string', 'null'], minLength: 1, description: 'A file of the models folder (relative to it); absent or null: the serving model\'s file.' } },
    },
    ReloadOk: {
      type: 'object',
      properties: {
        status: { const: 'ok' },
        model_version: { type: 'string' },
        previous_version: { type: ['string', 'null'] },
        load_ms: { type: 'number', minimum: 0 },
      },
      required: ['status', 'model_version', 'previous_version', 'load_ms'],
      additionalProperties: false,
    },
    ReloadRefused: {
      type: 'object',
      properties: {
        detail: { type: 'string' },
        code: { type: 'string', enum: Object.keys(kErrorTable) },
        model_version: { type: ['string', 'null'], description: 'The version still serving.' },
      },
      required: ['detail'],
      additionalProperties: false,
    },
  }
}

/** The headers an error code's answer carries (kErrorTable), as OpenAPI header objects. */
function errorHeaders (codes: ErrorCodes): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (const name of ['Retry-After', 'WWW-Authenticate']) {
    const carrying = codes.filter((c) => (kErrorTable[c].headers as Record<string, string> | null)?.[name] !== undefined)
    if (carrying.length === 0) continue
    out[name] = {
      description: `Sent with ${carrying.join(', ')}${carrying.length < codes.length ? ' only' : ''}.`,
      required: carrying.length === codes.length,
      schema: name === 'Retry-After' ? { type: 'string', pattern: '^[0-9]+$' } : { type: 'string', pattern: '^Bearer' },
    }
  }
  return out
}

/** One response per status, listing the registry codes that answer with it (x-error-codes). */
function errorResponses (codes: ErrorCodes, validationSchema: Json | null): Record<string, Json> {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of codes) {
    const status = kErrorTable[code].statusCode
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const out: Record<string, Json> = {}
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const schema = status === 422 && validationSchema !== null ? validationSchema : ref('ErrorBody')
    out[String(status)] = {
      description: list.map((c) => `${c}: ${kErrorTable[c].message}`).join('; '),
      headers: errorHeaders(list),
      content: json(schema),
      'x-error-codes': list,
    }
  }
  return out
}

/**
 * Answers that belong to no operation: another method on a known path (405, `Allow` lists the
 * documented methods), and an unknown path (404). components.responses, checked by the tests.
 */
const kSharedResponses: Record<string, Json> = {
  MethodNotAllowed: {
    description: `ERR_METHOD_NOT_ALLOWED: ${kErrorTable.ERR_METHOD_NOT_ALLOWED.message}. Any method a path does not document.`,
    headers: { Allow: { required: true, schema: { type: 'string', pattern: '^[A-Z]+(, ?[A-Z]+)*$' } } },
    content: json(ref('ErrorBody')),
    'x-error-codes': ['ERR_METHOD_NOT_ALLOWED'],
  },
  NotFound: {
    description: `ERR_NOT_FOUND: ${kErrorTable.ERR_NOT_FOUND.message}. Any path not listed (and /admin/* while admin_token is unset).`,
    content: json(ref('ErrorBody')),
    'x-error-codes': ['ERR_NOT_FOUND'],
  },
}

function operation (route: RouteSpec, options: ApiDocumentOptions): Json {
  const base: Json = { operationId: route.operationId, summary: route.summary, tags: [route.tag] }
  const bodyLimit = `Body at most ${options.maxBodyBytes} bytes (max_body_bytes).`
  switch (route.operationId) {
    case 'predict':
      return {
        ...base,
        requestBody: { required: true, description: bodyLimit, content: json(ref('PredictRequest')) },
        responses: { 200: { description: 'The prediction', content: json(ref('Prediction')) }, ...errorResponses(kPredictErrors, ref('ValidationErrorBody')) },
      }
    case 'predictBatch':
      return {
        ...base,
        requestBody: { required: true, description: `${bodyLimit} At most ${options.maxBatchRequests} requests (max_batch_requests).`, content: json(ref('BatchRequest')) },
        responses: { 200: { description: 'One item per request: a prediction or that item\'s error', content: json(ref('BatchResponse')) }, ...errorResponses(kBatchErrors, ref('ValidationErrorBody')) },
      }
    case 'health':
      return {
        ...base,
        security: [{}, { adminBearer: [] }],
        description: 'With the admin token, model_path and model_error_detail are added.',
        responses: {
          200: { description: 'A model is loaded', content: json(ref('Health')) },
          503: { description: 'No model loaded (detail: "Model not loaded")', content: json(ref('Health')) },
        },
      }
    case 'healthLive':
      return { ...base, responses: { 200: { description: 'Alive', content: json(ref('Live')) } } }
    case 'healthReady':
      return {
        ...base,
        responses: {
          200: { description: 'Ready: model loaded and warm, not draining', content: json(ref('Ready')) },
          503: { description: 'Not ready: no model, or shutting down', content: json(ref('Ready')) },
        },
      }
    case 'metrics':
      return { ...base, responses: { 200: { description: 'Metrics', content: json(ref('Metrics')) } } }
    case 'metricsPrometheus':
      return { ...base, responses: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } } }
    case 'adminReload':
    case 'adminShadowStart':
    case 'adminShadowStop': {
      const stop = route.operationId === 'adminShadowStop'
      return {
        ...base,
        security: [{ adminBearer: [] }],
        description: `Present only when admin_token is set (404 otherwise)${options.adminEnabled ? '; enabled on this server' : '; NOT enabled on this server'}.`,
        ...(stop ? {} : { requestBody: { required: false, description: 'At most 4096 bytes.', content: json(ref('ModelPathBody')) } }),
        responses: {
          200: { description: stop ? 'Stopped (model_version empty; previous_version: the shadow\'s)' : 'Loaded and swapped in', content: json(ref('ReloadOk')) },
          ...errorResponses(stop ? ['ERR_UNAUTHORIZED'] : kAdminErrors, null),
          ...(stop ? {} : { 422: { description: 'Body refused, or the named model is unusable (the serving one is unchanged)', content: json(ref('ReloadRefused')) } }),
          503: { description: 'ERR_SHUTTING_DOWN: the server is shutting down', content: json(ref('ReloadRefused')) },
        },
      }
    }
    case 'openapi':
    case 'asyncapi':
      return { ...base, responses: { 200: { description: route.summary, content: json({ type: 'object' }) } } }
    case 'flatbuffersSchema':
      return { ...base, responses: { 200: { description: route.summary, content: { 'text/plain': { schema: { type: 'string' } } } } } }
    case 'docs':
      return { ...base, responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } } }
    default:
      throw new Error(`no operation for ${route.operationId}`)
  }
}

export function buildOpenApiDocument (options: ApiDocumentOptions): Json {
  const paths: Record<string, Record<string, Json>> = {}
  for (const route of kHttpRoutes) (paths[route.path] ??= {})[route.method] = operation(route, options)
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'ML prediction server',
      version: options.version,
      summary: 'Direction predictions for market snapshots, over HTTP and WebSocket.',
      description: 'Generated at start from the validator\'s field table and the error registry. ' +
        'Errors use FastAPI\'s `{"detail": ...}` shape; each error response lists its stable codes in `x-error-codes`. ' +
        'Unknown paths answer 404 (ERR_NOT_FOUND). The WebSocket protocol (/ws) is described at /asyncapi.json ' +
        '(JSON text frames) and /schemas/prediction.fbs (FlatBuffers binary frames).',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'predict' }, { name: 'health' }, { name: 'metrics' },
      { name: 'admin', description: 'Bearer token admin_token; routes absent when it is not set.' }, { name: 'docs' },
    ],
    paths,
    components: {
      schemas: schemas(options),
      responses: kSharedResponses,
      securitySchemes: { adminBearer: { type: 'http', scheme: 'bearer', description: 'The admin_token setting.' } },
    },
    'x-websocket': { path: '/ws', asyncapi: '/asyncapi.json', flatbuffers_schema: '/schemas/prediction.fbs', feature_set_version: kFeatureSetVersion },
  }
}

/**
 * /ws as AsyncAPI 3.0: the JSON text frames with the HTTP field names, reusing the OpenAPI
 * schemas; binary frames are one FlatBuffers `Message` (schemaFormat names the .fbs text).
 */
export function buildAsyncApiDocument (options: ApiDocumentOptions, flatbuffersSchema: string): Json {
  const http = schemas(options)
  const s = (name: string): Json => ({ $ref: `#/components/schemas/${name}` })
  const withType = (type: string, base: Json, idSchema: Json = { type: 'integer', minimum: 0, maximum: 0xFFFFFFFF }): Json => ({
    allOf: [base, { type: 'object', properties: { type: { const: type }, id: idSchema }, required: ['type', 'id'] }],
  })
  const wireCodes = [...new Set(Object.values(kErrorTable).map((e) => e.wireCode).filter((c) => c !== null))]
  const componentsSchemas: Record<string, Json> = {
    PredictRequest: http.PredictRequest!,
    Prediction: { ...http.Prediction!, additionalProperties: true },
    PredictionComponent: http.PredictionComponent!,
    ValidationIssue: http.ValidationIssue!,
    WsPredictRequest: {
      allOf: [s('PredictRequest'), {
        type: 'object',
        properties: { id: { type: 'integer', minimum: 0, maximum: 0xFFFFFFFF }, type: { const: 'predict_request' } },
        required: ['id'],
      }],
    },
    WsPredictBatch: {
      type: 'object',
      properties: {
        type: { const: 'predict_batch' },
        id: { type: 'integer', minimum: 0, maximum: 0xFFFFFFFF },
        requests: { type: 'array', maxItems: options.maxBatchRequests, items: s('WsPredictRequest') },
      },
      required: ['type', 'id', 'requests'],
    },
    WsPrediction: withType('prediction', s('Prediction')),
    WsError: {
      type: 'object',
      properties: {
        type: { const: 'error' },
        id: { type: ['integer', 'null'], description: 'null when the frame was unreadable' },
        code: { type: 'string', enum: wireCodes },
        message: { type: 'string' },
        detail: { type: 'array', items: s('ValidationIssue') },
      },
      required: ['type', 'id', 'code', 'message'],
    },
    WsBatchResult: {
      type: 'object',
      properties: {
        type: { const: 'batch_result' },
        id: { type: 'integer' },
        items: { type: 'array', items: { oneOf: [s('WsPrediction'), s('WsError')] } },
      },
      required: ['type', 'id', 'items'],
    },
    WsHello: {
      type: 'object',
      properties: {
        type: { const: 'hello' },
        protocol_version: { type: 'integer' },
        model_version: { type: ['string', 'null'] },
        feature_set_version: { type: 'string', const: kFeatureSetVersion },
        features: { type: 'array', items: { type: 'string', enum: [...kFeatureNames] } },
        max_in_flight: { type: 'integer' },
        max_message_bytes: { type: 'integer' },
        max_batch_requests: { type: 'integer' },
        default_symbol: { type: 'string' },
      },
      required: ['type', 'protocol_version', 'feature_set_version', 'features'],
    },
  }
  const message = (name: string, summary: string): Json => ({ name, summary, contentType: 'application/json', payload: s(name) })
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'ML prediction server, WebSocket /ws',
      version: options.version,
      description: 'Text frames: the JSON messages below. Binary frames: one FlatBuffers `Message` (file identifier "MLPS") of the schema in components.schemas.FlatBuffersMessage (also served at /schemas/prediction.fbs). The server sends a hello first.',
    },
    defaultContentType: 'application/json',
    channels: {
      ws: {
        address: '/ws',
        messages: {
          predictRequest: { $ref: '#/components/messages/WsPredictRequest' },
          predictBatch: { $ref: '#/components/messages/WsPredictBatch' },
          prediction: { $ref: '#/components/messages/WsPrediction' },
          error: { $ref: '#/components/messages/WsError' },
          batchResult: { $ref: '#/components/messages/WsBatchResult' },
          hello: { $ref: '#/components/messages/WsHello' },
          binary: { $ref: '#/components/messages/FlatBuffersMessage' },
        },
      },
    },
    operations: {
      sendPredict: { action: 'receive', channel: { $ref: '#/channels/ws' }, summary: 'Client to server', messages: [{ $ref: '#/channels/ws/messages/predictRequest' }, { $ref: '#/channels/ws/messages/predictBatch' }, { $ref: '#/channels/ws/messages/binary' }] },
      answers: { action: 'send', channel: { $ref: '#/channels/ws' }, summary: 'Server to client', messages: [{ $ref: '#/channels/ws/messages/hello' }, { $ref: '#/channels/ws/messages/prediction' }, { $ref: '#/channels/ws/messages/error' }, { $ref: '#/channels/ws/messages/batchResult' }, { $ref: '#/channels/ws/messages/binary' }] },
    },
    components: {
      schemas: {
        ...componentsSchemas,
        FlatBuffersMessage: { schemaFormat: 'application/x-flatbuffers-schema', schema: flatbuffersSchema },
      },
      messages: {
        WsPredictRequest: message('WsPredictRequest', 'One request (the HTTP /predict body plus id)'),
        WsPredictBatch: message('WsPredictBatch', 'Several requests in one frame'),
        WsPrediction: message('WsPrediction', 'The HTTP prediction object plus type and id'),
        WsError: message('WsError', 'A refused or failed request, or an unreadable frame'),
        WsBatchResult: message('WsBatchResult', 'items[i] answers requests[i]'),
        WsHello: message('WsHello', 'First message on every connection'),
        FlatBuffersMessage: {
          name: 'FlatBuffersMessage', contentType: 'application/octet-stream',
          summary: 'Any of the above as one FlatBuffers Message (binary frame)',
          payload: s('FlatBuffersMessage'),
        },
      },
    },
  }
}
