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
import { readBody, refuseBadFraming, type BodyTarget } from './body-reader.js'
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

  /** Parsed bodies waiting for `admitQueued`; see `defer`. */
  private readonly queued: PredictContext[] = []
  private admitScheduled = false
  /** Bound once: one setImmediate per loop turn with bodies, not a closure per request. */
  private readonly admitQueuedBound = (): void => { this.admitQueued() }

  constructor (service: PredictionService, metrics: TransportMetrics, options: PredictRouteOptions) {
    this.service = service
    this.metrics = metrics
    this.options = options
  }

  /**
   * HTTP pipelining. uWS closes a connection when a request arrives while the previous response
   * on it is still pending ("denying async pipelining", uWebSockets src/HttpContext.h), which
   * fires onAborted for the pending one: an admitted request would then have changed its
   * symbol's state with no answer ever sent. Two measures, both in docs/architecture.md "HTTP pipelining":
   *
   * - The socket is paused (`res.pause()`, no more reads) once a body is read, and resumed just
   *   before the answer is written, so a request sent before the previous answer waits in the
   *   kernel and is served after it, in order.
   * - Bytes already read with the body (two requests in one write) are parsed by uWS in the same
   *   call, after the body handler returns, and close the connection. So nothing is admitted
   *   there: admission runs from setImmediate, after uWS's read handler, and skips a request whose
   *   connection was closed meanwhile. Neither request then touches any state.
   */
  defer (ctx: PredictContext): void {
    this.queued.push(ctx)
    if (!this.admitScheduled) {
      this.admitScheduled = true
      setImmediate(this.admitQueuedBound)
    }
  }

  private admitQueued (): void {
    this.admitScheduled = false
    const queued = this.queued
    // Index loop: an admission cannot add to the queue (bodies arrive only from uWS reads).
    // finally: a throwing admission must not leave answered contexts queued for the next turn.
    try {
      for (let i = 0; i < queued.length; i++) {
        const ctx = queued[i]!
        if (!ctx.aborted) ctx.admit()
      }
    } finally {
      queued.length = 0
    }
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
  /** The parsed JSON body, held from the read to the deferred admission. */
  protected value: unknown = undefined
  /** Reads are paused on this connection until the answer is written (see PredictRoutes.defer). */
  private paused = false

  constructor (routes: PredictRoutes, res: HttpResponse) {
    this.routes = routes
    this.res = res
    this.startMs = performance.now()
  }

  /** Decodes `this.value` and submits it; runs after the read handler (PredictRoutes.defer). */
  abstract admit (): void
  abstract complete (request: PendingRequest): void

  onBody (body: Buffer): void {
    const parsed = this.parse(body)
    if (parsed === undefined) return
    this.value = parsed.value
    // Still inside uWS's onData: a pause from here holds (one from the route handler does not).
    this.res.pause()
    this.paused = true
    this.routes.defer(this)
  }

  /** First thing in every cork that answers after `onBody`: lets the next pipelined request in. */
  protected resume (): void {
    if (!this.paused) return
    this.paused = false
    this.res.resume()
  }

  onBadFraming (): void {
    this.routes.metrics.recordError('ERR_BAD_FRAMING')
    refuseBadFraming(this.res, this)
  }

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
    this.res.cork(() => { writeError(this.res, 'ERR_INVALID_JSON', parsed.message, this.routes.service.isDraining) })
    return undefined
  }

  protected rejectInvalid (issues: readonly ValidationIssue[]): void {
    this.routes.metrics.recordError('ERR_VALIDATION')
    this.res.cork(() => { this.resume(); writeValidationError(this.res, issues, this.routes.service.isDraining) })
  }
}

class SingleContext extends PredictContext {
  admit (): void {
    const { routes, res } = this
    const issues = decodeJsonRequest(this.value, routes.snapshot, routes.decoded, routes.options, Date.now(), kBodyLoc)
    this.value = undefined
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
    res.cork(() => { this.resume(); writeError(res, code, undefined, routes.service.isDraining) })
  }

  complete (request: PendingRequest): void {
    const { routes, res } = this
    if (request.status === kStatusOk) {
      routes.metrics.recordPrediction(request.probability)
      if (this.aborted) return
      const latencyMs = performance.now() - this.startMs
      const body = predictionJson(request.probability, request.modelVersionJson, request.symbol, latencyMs)
      res.cork(() => { this.resume(); writeJson(res, 200, body, routes.service.isDraining) })
      routes.metrics.recordRequest(Math.round((performance.now() - this.startMs) * 1000))
      return
    }
    const code: ErrorCode = failureCode(request.status)
    routes.metrics.recordError(code)
    if (this.aborted) return
    res.cork(() => { this.resume(); writeError(res, code, undefined, routes.service.isDraining) })
  }
}

const kBodyLoc: readonly string[] = Object.freeze(['body'])

class BatchContext extends PredictContext {
  private items: string[] = []
  private pending = 0

  admit (): void {
    const { routes } = this
    const value = this.value
    this.value = undefined
    const issue = checkBatchShape(value, routes.options.maxBatchRequests)
    if (issue !== null) {
      this.rejectInvalid([issue])
      return
    }
    const requests = (value as { requests: unknown[] }).requests
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
    this.res.cork(() => { this.resume(); writeJson(this.res, 200, body, this.routes.service.isDraining) })
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
