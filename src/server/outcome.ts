/**
 * The one step from a request's fate to its answer, for both transports (HTTP /predict*, /ws):
 *
 *   refused before submit (bad frame, validation...)  -> `rejected` / `invalid`
 *   PredictionService.submit refused it              -> `refused`   (stale: a validation issue)
 *   the batcher completed it                          -> `completed` (prediction or failure code)
 *   its answer (prediction or batch) is written       -> `answered`  (the one clock read)
 *
 * Each records the request's metrics, so the metrics are recorded here and nowhere else in the
 * transports, once, where the outcome is known. A refusal is described by `code`, `message` and
 * `issues`, fields of this (per-transport) object valid until the next call: no object is built
 * per refusal. Everything runs synchronously on the event loop.
 */
import { performance } from 'node:perf_hooks'
import { failureCode, kStatusOk, type PendingRequest } from '../batching/pending-request.js'
import type { ErrorCode, ValidationIssue } from '../errors.js'
import { issuesMessage, kIssue, staleIssues } from '../protocol/request-fields.js'
import { messageOf } from '../protocol/wire-codes.js'
import {
  kRejectCode, kRejectStale, type SubmitResult, type TransportMetrics,
} from '../service/prediction-service.js'

export class Outcomes {
  /** The last refusal: its registry code... */
  code: ErrorCode = 'ERR_INTERNAL'
  /** ...the `message` a /ws error answer carries (HTTP answers the code's own `detail`)... */
  message = ''
  /** ...and its FastAPI issues (answered 422 over HTTP, `detail` on /ws), or null. */
  issues: readonly ValidationIssue[] | null = null
  private readonly metrics: TransportMetrics

  constructor (metrics: TransportMetrics) {
    this.metrics = metrics
  }

  /** A request or frame refused before submit for `code` (with a message of its own when given). */
  rejected (code: ErrorCode, message: string = messageOf(code), issues: readonly ValidationIssue[] | null = null): ErrorCode {
    this.metrics.recordError(code)
    this.code = code
    this.message = message
    this.issues = issues
    return code
  }

  /** A request whose fields failed validation. */
  invalid (issues: readonly ValidationIssue[]): ErrorCode {
    return this.rejected('ERR_VALIDATION', issuesMessage(issues), issues)
  }

  /**
   * `submit` did not admit the request (any result but kSubmitted). A stale timestamp is the
   * client's: a validation issue at the request's `loc`, with the rule's own message.
   */
  refused (result: SubmitResult, loc: ReadonlyArray<string | number>): ErrorCode {
    if (result === kRejectStale) return this.rejected('ERR_VALIDATION', kIssue.staleTimestamp.msg, staleIssues(loc))
    return this.rejected(kRejectCode[result as keyof typeof kRejectCode])
  }

  /** The batcher completed the request: null for a prediction, else its failure's code. */
  completed (request: PendingRequest): ErrorCode | null {
    if (request.status === kStatusOk) {
      this.metrics.recordPrediction(request.probability)
      return null
    }
    const code = failureCode(request.status)
    this.metrics.recordError(code)
    return code
  }

  /**
   * A prediction or batch answer is written now: the server's time for the request (ms since it
   * was read), read from the clock once, for both the answer's `latency_ms` and the histogram.
   */
  answered (startMs: number): number {
    const latencyMs = performance.now() - startMs
    this.metrics.recordRequest(Math.round(latencyMs * 1000))
    return latencyMs
  }
}
