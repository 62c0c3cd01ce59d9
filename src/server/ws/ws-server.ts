/**
 * The /ws endpoint (CONTRACT.md, "WebSocket"): the uWS behavior, the state its connections share,
 * and the shutdown step that closes them.
 *
 * Limits, and what uWS really does at each (measured by test/ws/ws-limits.test.ts):
 * - A message over `maxMessageBytes` (max_body_bytes) is refused with close 1009 by this code.
 *   uWS's own `maxPayloadLength` is set to twice that as a backstop: past it uWS drops the TCP
 *   connection without a close frame (the client sees 1006) before buffering the message.
 * - Text frames that are not UTF-8 are dropped by uWS the same way (1006).
 * - More than `maxInFlight` unanswered requests on one connection: the extra ones get OVERLOADED.
 * - A client that does not read its answers: past `softBackpressureBytes` buffered for it, new
 *   requests get OVERLOADED (small answers) instead of being run; past `maxBackpressureBytes` uWS
 *   drops the send and closes the connection (closeOnBackpressureLimit).
 * - Idle connections are pinged (sendPingsAutomatically) and closed when the peer stays silent
 *   for `idleTimeoutSeconds`.
 * - Shutdown: new requests get OVERLOADED ("Shutting down") while admitted ones finish; then every
 *   connection is closed with 1001.
 */
import { performance } from 'node:perf_hooks'
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js'
import { kFeatureNames, kFeatureSetVersion } from '../../features/feature-spec.js'
import { MarketSnapshot } from '../../features/market-snapshot.js'
import type { Config } from '../../config/schema.js'
import type { Logger } from '../../log/logger.js'
import { logEvents } from '../../log/log-events.js'
import type { DecodedRequest } from '../../protocol/json-request.js'
import { FbFrameReader, FbWriter, type HelloInfo } from '../../protocol/fb-codec.js'
import type { PredictionService, TransportMetrics } from '../../service/prediction-service.js'
import { WsConnection, type WsUserData } from './ws-connection.js'
import { helloText, JsonFrameReader } from './ws-json-codec.js'

export interface WsOptions {
  /** Largest message accepted (max_body_bytes); larger ones close the connection with 1009. */
  readonly maxMessageBytes: number
  readonly maxBatchRequests: number
  readonly maxClockSkewMs: number
  readonly defaultSymbol: string
  /** Unanswered requests (batch items included) per connection. */
  readonly maxInFlight: number
  /** Buffered answer bytes past which new requests are refused with OVERLOADED. */
  readonly softBackpressureBytes: number
  /** Buffered answer bytes past which uWS closes the connection. */
  readonly maxBackpressureBytes: number
  readonly idleTimeoutSeconds: number
}


/** Limits derived from the configuration's max_body_bytes and max_batch_requests. */
export function wsOptionsFrom (config: Pick<Config, 'maxBodyBytes' | 'maxBatchRequests' | 'maxClockSkewMs' | 'defaultSymbol' | 'wsMaxInFlight' | 'wsMaxBackpressureBytes' | 'wsIdleTimeoutS'>): WsOptions {
  // The hard limit must hold several of the largest answers (a full batch result) at once.
  const maxBackpressureBytes = Math.max(config.wsMaxBackpressureBytes, 2 * config.maxBodyBytes)
  return {
    maxMessageBytes: config.maxBodyBytes,
    maxBatchRequests: config.maxBatchRequests,
    maxClockSkewMs: config.maxClockSkewMs,
    defaultSymbol: config.defaultSymbol,
    maxInFlight: config.wsMaxInFlight,
    softBackpressureBytes: maxBackpressureBytes >> 2,
    maxBackpressureBytes,
    idleTimeoutSeconds: config.wsIdleTimeoutS,
  }
}

export const kCloseGoingAway = 1001
export const kCloseTooBig = 1009

export class WsServer {
  readonly service: PredictionService
  readonly metrics: TransportMetrics
  readonly options: WsOptions
  readonly log: Logger
  /** Decoding, the feature update and the row write are synchronous, so one scratch set serves all. */
  readonly snapshot = new MarketSnapshot()
  readonly decoded: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }
  readonly fbReader = new FbFrameReader()
  readonly jsonReader = new JsonFrameReader()
  readonly fbWriter = new FbWriter()
  readonly tooManyInFlightMessage: string
  readonly backpressureMessage = 'Overloaded: answers are not being read (backpressure)'
  private readonly connections = new Set<WsConnection>()

  constructor (service: PredictionService, metrics: TransportMetrics, log: Logger, options: WsOptions) {
    this.service = service
    this.metrics = metrics
    this.log = log
    this.options = options
    this.tooManyInFlightMessage = `Overloaded: more than ${options.maxInFlight} requests in flight on this connection`
  }

  get connectionCount (): number { return this.connections.size }

  behavior (): WebSocketBehavior<WsUserData> {
    return {
      maxPayloadLength: 2 * this.options.maxMessageBytes,
      maxBackpressure: this.options.maxBackpressureBytes,
      closeOnBackpressureLimit: true,
      idleTimeout: this.options.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => { this.upgrade(res, req, context) },
      open: (ws) => { this.open(ws) },
      message: (ws, message, isBinary) => { this.message(ws, message, isBinary) },
      close: (ws) => { this.close(ws) },
    }
  }

  /** Closes every connection with 1001 (after the service drained, so every answer went out first). */
  closeAll (): void {
    for (const conn of [...this.connections]) conn.ws?.end(kCloseGoingAway, 'Server shutting down')
  }

  helloInfo (): HelloInfo {
    return {
      modelVersion: this.service.currentModel?.modelVersion ?? null,
      featureSetVersion: kFeatureSetVersion,
      features: kFeatureNames,
      maxInFlight: this.options.maxInFlight,
      maxMessageBytes: this.options.maxMessageBytes,
      maxBatchRequests: this.options.maxBatchRequests,
      defaultSymbol: this.options.defaultSymbol,
    }
  }

  helloBytes (): Uint8Array { return this.fbWriter.hello(this.helloInfo()) }
  helloText (): string { return helloText(this.helloInfo()) }

  private upgrade (res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // req is stack-allocated: everything is read here, synchronously.
    const key = req.getHeader('sec-websocket-key')
    const protocol = req.getHeader('sec-websocket-protocol')
    const extensions = req.getHeader('sec-websocket-extensions')
    const json = req.getQuery('format') === 'json'
    if (this.service.isShuttingDown) {
      res.writeStatus('503 Service Unavailable').writeHeader('Retry-After', '1').end('{"detail":"Shutting down"}', true)
      return
    }
    const conn = new WsConnection(this)
    conn.helloJson = json
    res.upgrade<WsUserData>({ conn }, key, protocol, extensions, context)
  }

  private open (ws: WebSocket<WsUserData>): void {
    const conn = ws.getUserData().conn
    conn.ws = ws
    this.connections.add(conn)
    conn.sendHello()
  }

  private message (ws: WebSocket<WsUserData>, message: ArrayBuffer, isBinary: boolean): void {
    const startMs = performance.now()
    const conn = ws.getUserData().conn
    if (message.byteLength > this.options.maxMessageBytes) {
      this.metrics.recordError('ERR_BODY_TOO_LARGE')
      ws.end(kCloseTooBig, 'Message too big')
      return
    }
    // `message` is neutered when this callback returns: it is decoded completely before that.
    const bytes = new Uint8Array(message)
    try {
      if (isBinary) conn.onBinary(bytes, startMs)
      else conn.onText(bytes, startMs)
    } catch (err) {
      // A bug, not the client's fault: logged, answered INTERNAL, and the connection stays usable.
      logEvents.internalError(this.log, '/ws', err)
      conn.refuseInternal(!isBinary)
    }
  }

  private close (ws: WebSocket<WsUserData>): void {
    const conn = ws.getUserData().conn
    conn.onClose()
    this.connections.delete(conn)
  }
}
