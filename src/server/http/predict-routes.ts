import { isUtf8 } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import type { ErrorCode, ValidationIssue } from '../../errors.js'
import { MarketSnapshot } from '../../features/market-snapshot.js'
import {
  failureCode, kStatusOk, type PendingRequest, type PredictionSink,
} from '../../batching/pending-request.js'
import { decodeJsonRequest, type DecodedRequest } from '../../protocol/json-request.js'
import { kIssue } from '../../protocol/request-fields.js'
import {
  kRejectCode, kRejectStale, kSubmitted, type PredictionService, type TransportMetrics,
} from '../../service/prediction-service.js'
import { readBody, type BodyTarget } from './body-reader.js'
import { batchItemError, predictionJson, writeError, writeJson, writeValidationError } from './reply.js'

export interface PredictRouteOptions {
  readonly maxBodyBytes: number
  readonly maxBatchRequests: number
  readonly maxClockSkewMs: number
}

/** Shared, per-server state of the predict routes; contexts hold a reference, not copies. */
export class PredictRoutes {
  readonly service: PredictionService
  readonly metrics: TransportMetrics
  readonly options: PredictRouteOptions
  /** Decoding, the feature update and the row write are synchronous, so one scratch pair serves all. */
  readonly snapshot = new MarketSnapshot()
  readonly decoded: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }

  constructor (service: PredictionService, metrics: TransportMetrics, options: PredictRouteOptions) {
    this.service = service
    this.metrics = metrics
    this.options = options
  }

  /** POST /predict */
  single (res: HttpResponse, req: HttpRequest): void {
    const ctx = new SingleContext(this, res)
    res.onAborted(() => { ctx.aborted = true })
    readBody(res, req, this.options.maxBodyBytes, ctx)
  }

  /** POST /predict/batch */
  batch (res: HttpResponse, req: HttpRequest): void {
    const ctx = new BatchContext(this, res)
    res.onAborted(() => { ctx.aborted = true })
    readBody(res, req, this.options.maxBodyBytes, ctx)
  }
}

function parseJson (body: Buffer): { ok: true, value: unknown } | { ok: false, message: string } {
  // JSON text is UTF-8 (RFC 8259 §8.1). toString('utf8') would turn invalid bytes into U+FFFD and
  // accept the body (FastAPI answers 400); isUtf8 is simdutf-backed, a small cost next to JSON.parse.
  if (!isUtf8(body)) return { ok: false, message: 'Invalid JSON body: not valid UTF-8' }
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) }
  } catch (err) {
    // Deeply nested input can overflow the parser's stack (RangeError): still the client's error.
    return { ok: false, message: `Invalid JSON body: ${(err as Error).message}` }
  }
}


function staleIssue (loc: ReadonlyArray<string | number>): ValidationIssue[] {
  return [{ loc: [...loc, 'timestamp_ms'], ...kIssue.staleTimestamp }]
}

/**
 * What both predict routes share: the response, the abort flag uWS sets, the read time, and the
 * answers to a body that is too large or not JSON.
 */
abstract class PredictContext implements BodyTarget, PredictionSink {
  aborted = false
  protected readonly routes: PredictRoutes
  protected readonly res: HttpResponse
  protected readonly startMs: number

  constructor (routes: PredictRoutes, res: HttpResponse) {
    this.routes = routes
    this.res = res
    this.startMs = performance.now()
  }

  abstract onBody (body: Buffer): void
  abstract complete (request: PendingRequest): void

  onBodyTooLarge (): void {
    if (this.aborted) return
    this.routes.metrics.recordError('ERR_BODY_TOO_LARGE')
    this.res.cork(() => { writeError(this.res, 'ERR_BODY_TOO_LARGE', `Request body exceeds ${this.routes.options.maxBodyBytes} bytes`) })
  }

  /** The parsed body, or undefined after answering 400 (or when the client is gone). */
  protected parse (body: Buffer): { value: unknown } | undefined {
    if (this.aborted) return undefined
    const parsed = parseJson(body)
    if (parsed.ok) return parsed
    this.routes.metrics.recordError('ERR_INVALID_JSON')
    this.res.cork(() => { writeError(this.res, 'ERR_INVALID_JSON', parsed.message) })
    return undefined
  }

  protected rejectInvalid (issues: readonly ValidationIssue[]): void {
    this.routes.metrics.recordError('ERR_VALIDATION')
    this.res.cork(() => { writeValidationError(this.res, issues) })
  }
}

class SingleContext extends PredictContext {
  onBody (body: Buffer): void {
    const parsed = this.parse(body)
    if (parsed === undefined) return
    const { routes, res } = this
    const issues = decodeJsonRequest(parsed.value, routes.snapshot, routes.decoded, routes.options, Date.now(), kBodyLoc)
    if (issues.length > 0) {
      this.rejectInvalid(issues)
      return
    }
    const result = routes.service.submit(routes.decoded.symbol, routes.snapshot, routes.decoded.deadlineMs, this, 0)
    if (result === kSubmitted) return
    if (result === kRejectStale) {
      this.rejectInvalid(staleIssue(kBodyLoc))
      return
    }
    const code = kRejectCode[result]
    routes.metrics.recordError(code)
    res.cork(() => { writeError(res, code) })
  }

  complete (request: PendingRequest): void {
    const { routes, res } = this
    if (request.status === kStatusOk) {
      routes.metrics.recordPrediction(request.probability)
      if (this.aborted) return
      const latencyMs = performance.now() - this.startMs
      const body = predictionJson(request.probability, request.modelVersionJson, request.symbol, latencyMs)
      res.cork(() => { writeJson(res, 200, body) })
      routes.metrics.recordRequest(Math.round((performance.now() - this.startMs) * 1000))
      return
    }
    const code: ErrorCode = failureCode(request.status)
    routes.metrics.recordError(code)
    if (this.aborted) return
    res.cork(() => { writeError(res, code) })
  }
}

const kBodyLoc: readonly string[] = Object.freeze(['body'])

class BatchContext extends PredictContext {
  private items: string[] = []
  private pending = 0

  onBody (body: Buffer): void {
    const parsed = this.parse(body)
    if (parsed === undefined) return
    const { routes } = this
    const issue = checkBatchShape(parsed.value, routes.options.maxBatchRequests)
    if (issue !== null) {
      this.rejectInvalid([issue])
      return
    }
    const requests = (parsed.value as { requests: unknown[] }).requests
    this.items = new Array<string>(requests.length)
    // One count held by this loop: an item answered during its own submit (an expired deadline,
    // a failure) cannot complete the response before every item has been placed.
    this.pending = 1
    const now = Date.now()
    for (let i = 0; i < requests.length; i++) {
      const loc = ['body', 'requests', i]
      const issues = decodeJsonRequest(requests[i], routes.snapshot, routes.decoded, routes.options, now, loc)
      if (issues.length > 0) {
        routes.metrics.recordError('ERR_VALIDATION')
        this.items[i] = batchItemError('ERR_VALIDATION', issues)
        continue
      }
      // Counted before submitting: a worker may answer synchronously on a failure path.
      this.pending++
      const result = routes.service.submit(routes.decoded.symbol, routes.snapshot, routes.decoded.deadlineMs, this, i)
      if (result === kSubmitted) continue
      this.pending--
      if (result === kRejectStale) {
        routes.metrics.recordError('ERR_VALIDATION')
        this.items[i] = batchItemError('ERR_VALIDATION', staleIssue(loc))
      } else {
        const code = kRejectCode[result]
        routes.metrics.recordError(code)
        this.items[i] = batchItemError(code)
      }
    }
    if (--this.pending === 0) this.respond()
  }

  complete (request: PendingRequest): void {
    const { routes } = this
    if (request.status === kStatusOk) {
      routes.metrics.recordPrediction(request.probability)
      this.items[request.tag] = predictionJson(request.probability, request.modelVersionJson, request.symbol, performance.now() - this.startMs)
    } else {
      const code: ErrorCode = failureCode(request.status)
      routes.metrics.recordError(code)
      this.items[request.tag] = batchItemError(code)
    }
    if (--this.pending === 0) this.respond()
  }

  private respond (): void {
    if (this.aborted) return
    const body = `{"predictions":[${this.items.join(',')}]}`
    this.res.cork(() => { writeJson(this.res, 200, body) })
    this.routes.metrics.recordRequest(Math.round((performance.now() - this.startMs) * 1000))
  }
}

function checkBatchShape (value: unknown, maxItems: number): ValidationIssue | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { loc: ['body'], ...kIssue.notObject }
  const requests = Object.hasOwn(value, 'requests') ? (value as { requests: unknown }).requests : undefined
  if (requests === undefined || requests === null) return { loc: ['body', 'requests'], ...kIssue.missing }
  if (!Array.isArray(requests)) return { loc: ['body', 'requests'], ...kIssue.notList }
  if (requests.length > maxItems) return { loc: ['body', 'requests'], msg: kIssue.tooLong.msg.replace('%d', String(maxItems)), type: kIssue.tooLong.type }
  return null
}
