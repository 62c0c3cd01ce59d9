import { performance } from 'node:perf_hooks'
import { batchTooLong } from '../protocol/request-fields.js'
import { ClientConnection, kReconnectDefaults, type ReconnectOptions } from './connection.js'
import {
  ClientClosedError, ClientDisconnectedError, ClientInvalidRequestError, type PredictionClientError,
} from './errors.js'
import { HttpTransport, type HealthCheckResult } from './http-transport.js'
import { kCallBatch, kCallSingle, PendingCalls } from './pending-calls.js'
import { fallbackLogLine, signalLogLine } from './signal.js'
import {
  batchText, FbClientCodec, requestText, type Prediction, type PredictionRequest, type PredictionResult,
  type ServerHello, type ServerMessage,
} from './wire-codec.js'

/** Where the client writes its log lines; `console` by default, null for none. */
export interface ClientLogger {
  info (message: string): void
  warn (message: string): void
}

export interface PredictionClientOptions {
  /** The server's base URL, as the bot's `ml_service.base_url`: `http://localhost:8000`. */
  readonly url: string
  /** The WebSocket URL. Default: `url` with ws(s):// and the path `/ws`. */
  readonly wsUrl?: string
  /** Per-call timeout (ms), the bot's `timeout_ms`. Default 100. */
  readonly timeoutMs?: number
  /** Frame format on the socket: FlatBuffers (`'binary'`, default) or JSON text (`'json'`). */
  readonly format?: 'binary' | 'json'
  /** Use HTTP POST /predict while the socket is down. Default true. */
  readonly httpFallback?: boolean
  /** Reconnection backoff. Default: 50 ms doubling to 5 s, with jitter, forever. */
  readonly reconnect?: ReconnectOptions
  /** Limit for the WebSocket handshake and the server's hello (ms). Default 2000. */
  readonly connectTimeoutMs?: number
  /** Ping period (ms) to detect a silent peer; 0 disables. Default 15000. */
  readonly heartbeatIntervalMs?: number
  /** Timeout of `healthCheck()` (ms). Default 1000. */
  readonly healthTimeoutMs?: number
  /** Log sink for the bot-style lines. Default `console`; null silences the client. */
  readonly logger?: ClientLogger | null
}

/** Per-call options. */
export interface CallOptions {
  /** Overrides the client's `timeoutMs` for this call. */
  readonly timeoutMs?: number
}

/**
 * A client of the prediction server for the trading bot (or any TypeScript program).
 *
 * It keeps one WebSocket open to `/ws` and pipelines every call over it (FlatBuffers frames by
 * default), re-establishing it with exponential backoff and jitter whenever it drops. While the
 * socket is down, calls go over HTTP (`POST /predict`) instead. Calls in flight when the socket
 * drops fail at once with `ERR_CLIENT_DISCONNECTED`; none is left waiting for its timeout.
 *
 * ```ts
 * const client = new PredictionClient({ url: 'http://localhost:8000' })
 * const prediction = await client.predictWithFallback({ price: 612.5, symbol: 'BNBUSDT' })
 * const signal = toSignal(prediction, { confidenceThreshold: 0.55, weight: 0.4 })
 * await client.close()
 * ```
 *
 * Errors carry a stable `code`: `ERR_CLIENT_TIMEOUT`, `ERR_CLIENT_DISCONNECTED`,
 * `ERR_CLIENT_CLOSED`, `ERR_CLIENT_INVALID_REQUEST`, or `ERR_REMOTE` with the server's `wireCode`.
 */
export class PredictionClient {
  private readonly timeoutMs: number
  private readonly json: boolean
  private readonly httpFallback: boolean
  private readonly healthTimeoutMs: number
  private readonly logger: ClientLogger | null
  private readonly pending = new PendingCalls<Prediction, PredictionResult[]>()
  private readonly codec = new FbClientCodec()
  private readonly connection: ClientConnection
  private readonly http: HttpTransport
  private readonly closeController = new AbortController()
  private readonly upWaiters: Array<{ resolve: (hello: ServerHello) => void, reject: (err: Error) => void }> = []
  private closed: Promise<void> | null = null
  private wasDownLogged = false

  constructor (options: PredictionClientOptions) {
    const base = new URL(options.url)
    this.timeoutMs = options.timeoutMs ?? 100
    this.json = options.format === 'json'
    this.httpFallback = options.httpFallback ?? true
    this.healthTimeoutMs = options.healthTimeoutMs ?? 1000
    this.logger = options.logger === undefined ? console : options.logger
    this.http = new HttpTransport(base.href, this.closeController.signal)
    const wsUrl = new URL(options.wsUrl ?? new URL('ws', base.href.endsWith('/') ? base.href : `${base.href}/`).href)
    if (options.wsUrl === undefined) wsUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
    if (this.json) wsUrl.searchParams.set('format', 'json')
    this.connection = new ClientConnection({
      url: wsUrl.href,
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15000,
      reconnect: { ...kReconnectDefaults, ...options.reconnect },
    }, {
      onUp: (hello) => { this.onUp(hello) },
      onMessage: (message) => { this.onMessage(message) },
      onDown: (err, wasUp) => { this.onDown(err, wasUp) },
      onUndecodable: (err) => { this.logger?.warn(`ML service sent an unreadable message: ${err.message}`) },
    })
    this.connection.start()
  }

  /** True while the WebSocket is up (the server's hello received). */
  get connected (): boolean { return this.connection.isUp }

  /** The hello of the live connection (model version, feature list, limits), or null while down. */
  get serverHello (): ServerHello | null { return this.connection.serverHello }

  /** Calls waiting for an answer on the socket. */
  get inFlight (): number { return this.pending.size }

  /** How many times the socket came back after a loss. */
  get reconnects (): number { return this.connection.reconnects }

  /**
   * Resolves with the server's hello once the socket is up (at once if it is); rejects after
   * `timeoutMs` (default 5000) or when the client is closed.
   */
  waitForConnection (timeoutMs = 5000): Promise<ServerHello> {
    if (this.closed !== null) return Promise.reject(new ClientClosedError())
    const hello = this.connection.serverHello
    if (hello !== null) return Promise.resolve(hello)
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (h: ServerHello) => { clearTimeout(timer); resolve(h) },
        reject: (err: Error) => { clearTimeout(timer); reject(err) },
      }
      const timer = setTimeout(() => {
        const i = this.upWaiters.indexOf(waiter)
        if (i >= 0) this.upWaiters.splice(i, 1)
        reject(new ClientDisconnectedError(`not connected after ${timeoutMs}ms`))
      }, timeoutMs)
      this.upWaiters.push(waiter)
    })
  }

  /**
   * One prediction. Over the socket when it is up, else over HTTP (unless `httpFallback` is
   * false). Rejects with a typed error on timeout, disconnect, or a server error.
   */
  predict (request: PredictionRequest, options?: CallOptions): Promise<Prediction> {
    if (this.closed !== null) return Promise.reject(new ClientClosedError())
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs
    if (!this.connection.isUp) return this.viaHttp(request, timeoutMs)
    return new Promise<Prediction>((resolve, reject) => {
      const id = this.pending.add(kCallSingle, timeoutMs, resolve, reject)
      const sent = this.connection.send(this.json ? requestText(id, request) : this.codec.request(id, request))
      if (!sent) this.pending.fail(id, new ClientDisconnectedError('disconnected (socket not open)'))
    })
  }

  /**
   * Several predictions in one frame (or one POST /predict/batch). Resolves with one result per
   * request, in order: `{ ok: true, prediction }` or `{ ok: false, error }` (a RemoteError for
   * that item). Rejects only when the whole batch failed (timeout, disconnect, refused).
   */
  predictBatch (requests: readonly PredictionRequest[], options?: CallOptions): Promise<PredictionResult[]> {
    if (this.closed !== null) return Promise.reject(new ClientClosedError())
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs
    if (requests.length === 0) return Promise.resolve([])
    const hello = this.connection.serverHello
    if (hello === null) {
      if (!this.httpFallback) return Promise.reject(new ClientDisconnectedError('disconnected (not connected)'))
      return this.http.predictBatch(requests, timeoutMs)
    }
    if (batchTooLong(requests.length, hello.max_batch_requests)) {
      return Promise.reject(new ClientInvalidRequestError(`batch of ${requests.length} requests; the server takes at most ${hello.max_batch_requests}`))
    }
    return new Promise<PredictionResult[]>((resolve, reject) => {
      const id = this.pending.add(kCallBatch, timeoutMs, resolve, reject)
      const frame = this.json ? batchText(id, requests) : this.codec.batch(id, requests)
      const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength
      if (bytes > hello.max_message_bytes) {
        // Sent, it would close the connection (1009) and fail every other call in flight.
        this.pending.fail(id, new ClientInvalidRequestError(`batch frame of ${bytes} bytes; the server takes at most ${hello.max_message_bytes}`))
        return
      }
      if (!this.connection.send(frame)) this.pending.fail(id, new ClientDisconnectedError('disconnected (socket not open)'))
    })
  }

  /**
   * The bot's fallback call: the prediction, or null on timeout, disconnect or server error, so
   * that the bot goes on without the ML signal. Logs the bot's lines:
   * `ML signal: LONG (confidence: 0.72, latency: 6.5ms)` or
   * `ML prediction failed (fallback mode): timeout after 100ms`.
   */
  async predictWithFallback (request: PredictionRequest, options?: CallOptions): Promise<Prediction | null> {
    const started = performance.now()
    try {
      const prediction = await this.predict(request, options)
      this.logger?.info(signalLogLine(prediction, performance.now() - started))
      return prediction
    } catch (err) {
      this.logger?.warn(fallbackLogLine(err))
      return null
    }
  }

  /** GET /health over HTTP. Never rejects: `healthy` is false when the server is not ready or unreachable. */
  healthCheck (options?: CallOptions): Promise<HealthCheckResult> {
    if (this.closed !== null) return Promise.resolve({ healthy: false, statusCode: null, body: null, error: new ClientClosedError() })
    return this.http.health(options?.timeoutMs ?? this.healthTimeoutMs)
  }

  /** Fails pending calls with ERR_CLIENT_CLOSED, stops reconnecting and closes the socket. Idempotent. */
  close (): Promise<void> {
    this.closed ??= this.doClose()
    return this.closed
  }

  private async doClose (): Promise<void> {
    const err = new ClientClosedError()
    this.closeController.abort(err)
    this.pending.failAll(err)
    for (const w of this.upWaiters.splice(0)) w.reject(err)
    await this.connection.close()
  }

  private viaHttp (request: PredictionRequest, timeoutMs: number): Promise<Prediction> {
    if (!this.httpFallback) return Promise.reject(new ClientDisconnectedError('disconnected (not connected)'))
    return this.http.predict(request, timeoutMs)
  }

  private onUp (hello: ServerHello): void {
    if (this.wasDownLogged) this.logger?.info(`ML service reconnected (model ${hello.model_version ?? 'not loaded'})`)
    this.wasDownLogged = false
    for (const w of this.upWaiters.splice(0)) w.resolve(hello)
  }

  private onDown (err: PredictionClientError, wasUp: boolean): void {
    this.pending.failAll(err)
    if (wasUp && this.closed === null && !this.wasDownLogged) {
      this.wasDownLogged = true
      this.logger?.warn(`ML service connection lost: ${err.message}; reconnecting${this.httpFallback ? ', HTTP meanwhile' : ''}`)
    }
  }

  private onMessage (message: ServerMessage): void {
    switch (message.kind) {
      case 'prediction': {
        const call = this.pending.take(message.id)
        if (call === undefined) return // timed out already: the late answer is dropped
        if (call.kind === kCallSingle) call.resolve(message.prediction)
        else call.reject(new Error(`protocol error: a prediction answered batch ${message.id}`))
        return
      }
      case 'batch': {
        const call = this.pending.take(message.id)
        if (call === undefined) return
        if (call.kind === kCallBatch) call.resolve(message.results)
        else call.reject(new Error(`protocol error: a batch result answered request ${message.id}`))
        return
      }
      case 'error': {
        if (message.id === null) {
          // The server could not read one of our frames: a bug on this side, worth a line.
          this.logger?.warn(`ML service refused a frame: ${message.error.message}`)
          return
        }
        this.pending.take(message.id)?.reject(message.error)
        return
      }
      case 'hello':
        return
    }
  }
}
