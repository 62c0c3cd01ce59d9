/**
 * HTTP calls of the client: POST /predict and /predict/batch while the WebSocket is down, and
 * GET /health. Errors map to the same typed errors as over the socket: the server's answers to
 * RemoteError with the contract's wire code, the rest to timeout / disconnected / closed.
 */
import { ClientClosedError, ClientDisconnectedError, ClientTimeoutError } from './errors.js'
import { httpBatchResults, httpError, type Prediction, type PredictionRequest, type PredictionResult } from './wire-codec.js'

/** What `healthCheck()` resolves to; it never rejects. */
export interface HealthCheckResult {
  /** 200 from GET /health. */
  readonly healthy: boolean
  /** HTTP status, or null when there was no answer. */
  readonly statusCode: number | null
  /** The parsed /health body (`status`, `model_loaded`, `model_version`, ...), or null. */
  readonly body: Record<string, unknown> | null
  /** Why there was no answer (timeout, refused connection, client closed), else null. */
  readonly error: Error | null
}

/** The wire code of an HTTP error answer (CONTRACT.md's status table); defined in src/protocol/. */
export { wireCodeOfStatus } from '../protocol/wire-codes.js'

export class HttpTransport {
  private readonly baseUrl: string
  private readonly closeSignal: AbortSignal

  constructor (baseUrl: string, closeSignal: AbortSignal) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.closeSignal = closeSignal
  }

  async predict (req: PredictionRequest, timeoutMs: number): Promise<Prediction> {
    const { status, body } = await this.request('POST', '/predict', req, timeoutMs)
    if (status === 200) return body as Prediction
    throw httpError(status, body)
  }

  async predictBatch (reqs: readonly PredictionRequest[], timeoutMs: number): Promise<PredictionResult[]> {
    const { status, body } = await this.request('POST', '/predict/batch', { requests: reqs }, timeoutMs)
    if (status !== 200) throw httpError(status, body)
    return httpBatchResults(body)
  }

  async health (timeoutMs: number): Promise<HealthCheckResult> {
    try {
      const { status, body } = await this.request('GET', '/health', undefined, timeoutMs)
      const parsed = typeof body === 'object' && body !== null ? body as Record<string, unknown> : null
      return { healthy: status === 200, statusCode: status, body: parsed, error: null }
    } catch (err) {
      return { healthy: false, statusCode: null, body: null, error: err as Error }
    }
  }

  private async request (method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number, body: unknown }> {
    if (this.closeSignal.aborted) throw new ClientClosedError()
    const timeout = AbortSignal.timeout(timeoutMs)
    try {
      const res = await fetch(this.baseUrl + path, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([timeout, this.closeSignal]),
      })
      const text = await res.text()
      let parsed: unknown = null
      try { parsed = JSON.parse(text) } catch { parsed = text /* not JSON (a proxy's page): kept as text */ }
      return { status: res.status, body: parsed }
    } catch (err) {
      if (this.closeSignal.aborted) throw new ClientClosedError()
      if (timeout.aborted) throw new ClientTimeoutError(timeoutMs)
      throw new ClientDisconnectedError(`disconnected (HTTP ${method} ${path}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`, { cause: err })
    }
  }
}
