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
import type { Config } from '../../config/schema.js'
import type { Logger } from '../../log/logger.js'
import { logEvents } from '../../log/log-events.js'
import { kFormatBinary, kFormatText } from '../../protocol/ws-formats.js'
import type { PredictionService, TransportMetrics } from '../../service/prediction-service.js'
import { WsConnection, type WsUserData } from './ws-connection.js'
import { WsShared, type WsOptions } from './ws-context.js'

export type { WsOptions } from './ws-context.js'

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
  /** What the connections share (service, outcome step, limits, readers and encoders). */
  readonly shared: WsShared
  private readonly connections = new Set<WsConnection>()

  constructor (service: PredictionService, metrics: TransportMetrics, log: Logger, options: WsOptions) {
    this.shared = new WsShared(service, metrics, log, options)
  }

  get connectionCount (): number { return this.connections.size }

  behavior (): WebSocketBehavior<WsUserData> {
    const options = this.shared.options
    return {
      maxPayloadLength: 2 * options.maxMessageBytes,
      maxBackpressure: options.maxBackpressureBytes,
      closeOnBackpressureLimit: true,
      idleTimeout: options.idleTimeoutSeconds,
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

  private upgrade (res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // req is stack-allocated: everything is read here, synchronously.
    const key = req.getHeader('sec-websocket-key')
    const protocol = req.getHeader('sec-websocket-protocol')
    const extensions = req.getHeader('sec-websocket-extensions')
    const json = req.getQuery('format') === 'json'
    if (this.shared.service.isShuttingDown) {
      res.writeStatus('503 Service Unavailable').writeHeader('Retry-After', '1').end('{"detail":"Shutting down"}', true)
      return
    }
    const conn = new WsConnection(this.shared, json)
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
    if (message.byteLength > this.shared.options.maxMessageBytes) {
      this.shared.outcomes.rejected('ERR_BODY_TOO_LARGE')
      ws.end(kCloseTooBig, 'Message too big')
      return
    }
    // The one text/binary choice for the frame: everything after carries the format index.
    const format = isBinary ? kFormatBinary : kFormatText
    // `message` is neutered when this callback returns: it is decoded completely before that.
    try {
      conn.onFrame(format, new Uint8Array(message), startMs)
    } catch (err) {
      // A bug, not the client's fault: logged, answered INTERNAL, and the connection stays usable.
      logEvents.internalError(this.shared.log, '/ws', err)
      conn.refuseInternal(format)
    }
  }

  private close (ws: WebSocket<WsUserData>): void {
    const conn = ws.getUserData().conn
    conn.onClose()
    this.connections.delete(conn)
  }
}
