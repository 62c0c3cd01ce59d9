import { isUtf8 } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { MarketSnapshot } from '../../features/market-snapshot.js'
import type { PendingRequest, PredictionSink } from '../../batching/pending-request.js'
import { httpBatchJson, predictionJson } from '../../protocol/json-answer.js'
import { batchBodyIssue, decodeJsonRequest, type DecodedRequest } from '../../protocol/json-request.js'
import { kSubmitted, type PredictionService, type TransportMetrics } from '../../service/prediction-service.js'
import { BatchTracker } from '../batch-tracker.js'
import { Outcomes } from '../outcome.js'
import { readBody, refuseBadFraming, type BodyTarget } from './body-reader.js'
import { writeError, writeJson, writeRefusal } from './reply.js'

export interface PredictRouteOptions {
  readonly maxBodyBytes: number
  readonly maxBatchRequests: number
  readonly maxClockSkewMs: number
  /** A bug met while admitting a request (logged by the caller; the request's connection is closed). */
  readonly onInternalError?: (err: unknown) => void
}

/** Shared, per-server state of the predict routes; contexts hold a reference, not copies. */
export class PredictRoutes {
  readonly service: PredictionService
  /** Every answer's outcome and metrics (shared step with /ws). */
  readonly outcomes: Outcomes
  readonly options: PredictRouteOptions
  /** Decoding, the feature update and the row write are synchronous, so one scratch pair serves all. */
  readonly snapshot = new MarketSnapshot()
  readonly decoded: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }

  /** Parsed bodies waiting for `admitQueued`; see `defer`. */
  private readonly queued: PredictContext[] = []
  private admitScheduled = false
  /** Bound once: one setImmediate per loop turn with bodies, not a closure per request. */
  private readonly admitQueuedBound = (): void => { this.admitQueued() }
  /** Trackers of answered batches, for the next ones. */
  private readonly freeTrackers: BatchTracker[] = []

  constructor (service: PredictionService, metrics: TransportMetrics, options: PredictRouteOptions) {
    this.service = service
    this.outcomes = new Outcomes(metrics)
    this.options = options
  }

  acquireTracker (): BatchTracker { return this.freeTrackers.pop() ?? new BatchTracker() }

  releaseTracker (tracker: BatchTracker): void {
    tracker.release()
    this.freeTrackers.push(tracker)
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
        if (ctx.aborted) continue
        try {
          ctx.admit()
        } catch (err) {
          // A bug, not the client's: thrown from setImmediate it would end the process. It costs
          // this request its connection instead (onAborted marks the context, so a batch's items
          // already admitted are not answered on a closed socket); the other requests go on.
          this.outcomes.rejected('ERR_INTERNAL')
          this.options.onInternalError?.(err)
          ctx.closeAfterBug()
        }
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

  /** Closes the connection of a request whose admission threw (PredictRoutes.admitQueued). */
  closeAfterBug (): void {
    if (this.aborted) return
    this.aborted = true
    this.res.close()
  }

  /** First thing in every cork that answers after `onBody`: lets the next pipelined request in. */
  protected resume (): void {
    if (!this.paused) return
    this.paused = false
    this.res.resume()
  }

  onBadFraming (): void {
    this.routes.outcomes.rejected('ERR_BAD_FRAMING')
    refuseBadFraming(this.res, this)
  }

  onBodyTooLarge (): void {
    if (this.aborted) return
    this.routes.outcomes.rejected('ERR_BODY_TOO_LARGE')
    this.res.cork(() => { writeError(this.res, 'ERR_BODY_TOO_LARGE', `Request body exceeds ${this.routes.options.maxBodyBytes} bytes`) })
  }

  /** The parsed body, or undefined after answering 400 (or when the client is gone). */
  protected parse (body: Buffer): { value: unknown } | undefined {
    if (this.aborted) return undefined
    const parsed = parseJson(body)
    if (parsed.ok) return parsed
    this.routes.outcomes.rejected('ERR_INVALID_JSON')
    this.res.cork(() => { writeError(this.res, 'ERR_INVALID_JSON', parsed.message, this.routes.service.isDraining) })
    return undefined
  }

  /** Answers the refusal `routes.outcomes` describes (Outcomes.invalid, refused...). */
  protected answerRefusal (): void {
    const { code, issues } = this.routes.outcomes
    this.res.cork(() => { this.resume(); writeRefusal(this.res, code, issues, this.routes.service.isDraining) })
  }
}

class SingleContext extends PredictContext {
  admit (): void {
    const { routes } = this
    const issues = decodeJsonRequest(this.value, routes.snapshot, routes.decoded, routes.options, Date.now(), kBodyLoc)
    this.value = undefined
    if (issues.length > 0) {
      routes.outcomes.invalid(issues)
      this.answerRefusal()
      return
    }
    const result = routes.service.submit(routes.decoded.symbol, routes.snapshot, routes.decoded.deadlineMs, this, 0)
    if (result === kSubmitted) return
    routes.outcomes.refused(result, kBodyLoc)
    this.answerRefusal()
  }

  complete (request: PendingRequest): void {
    const { routes, res } = this
    const code = routes.outcomes.completed(request)
    if (this.aborted) return
    if (code !== null) {
      res.cork(() => { this.resume(); writeError(res, code, undefined, routes.service.isDraining) })
      return
    }
    const body = predictionJson(request.probability, request.modelVersionJson, request.symbol, routes.outcomes.answered(this.startMs),
      request.components)
    res.cork(() => { this.resume(); writeJson(res, 200, body, routes.service.isDraining) })
  }
}

const kBodyLoc: readonly string[] = Object.freeze(['body'])
/** `["body", "requests", i]`, built once per index on first use. */
const kItemLocs: Array<readonly (string | number)[]> = []
function itemLoc (i: number): readonly (string | number)[] {
  return kItemLocs[i] ??= Object.freeze(['body', 'requests', i])
}

class BatchContext extends PredictContext {
  /** From `admit` until the batch is answered (or abandoned, when the client went away). */
  private batch: BatchTracker | null = null

  admit (): void {
    const { routes } = this
    const { outcomes } = routes
    const value = this.value
    this.value = undefined
    const issue = batchBodyIssue(value, routes.options.maxBatchRequests)
    if (issue !== null) {
      outcomes.invalid([issue])
      this.answerRefusal()
      return
    }
    const requests = (value as { requests: unknown[] }).requests
    const batch = routes.acquireTracker()
    this.batch = batch
    batch.reset(0, requests.length, this.startMs)
    const now = Date.now()
    for (let i = 0; i < requests.length; i++) {
      const loc = itemLoc(i)
      const issues = decodeJsonRequest(requests[i], routes.snapshot, routes.decoded, routes.options, now, loc)
      if (issues.length > 0) {
        outcomes.invalid(issues)
        batch.failWith(i, outcomes)
        continue
      }
      batch.expect()
      const result = routes.service.submit(routes.decoded.symbol, routes.snapshot, routes.decoded.deadlineMs, this, i)
      if (result === kSubmitted) continue
      batch.unexpect()
      outcomes.refused(result, loc)
      batch.failWith(i, outcomes)
    }
    if (batch.settle()) this.respond(batch)
  }

  complete (request: PendingRequest): void {
    const batch = this.batch!
    if (batch.complete(request.tag, request, this.routes.outcomes)) this.respond(batch)
  }

  private respond (batch: BatchTracker): void {
    const { routes, res } = this
    this.batch = null
    if (!this.aborted) {
      routes.outcomes.answered(this.startMs)
      const body = httpBatchJson(batch)
      res.cork(() => { this.resume(); writeJson(res, 200, body, routes.service.isDraining) })
    }
    routes.releaseTracker(batch)
  }
}
