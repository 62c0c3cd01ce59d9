/**
 * One keep-alive HTTP/1.1 connection of the generator over a raw `net` socket: one request in
 * flight (pipelining off, as wrk and the bot's client), the request a prebuilt buffer, the answer
 * read by bench/lib/response-parser.ts for its framing and status only.
 *
 * Raw sockets rather than undici: a full client costs tens of µs of CPU per request where this
 * costs a few, and on a 2-core machine every µs the generator spends is taken from the server.
 * Each result reports the generator's CPU per request so the cost stays visible.
 *
 * A timed-out request costs its connection (HTTP/1.1 cannot cancel one request): the socket is
 * replaced so that a late answer can never be paired with the next request.
 */

import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { kConnectTimeoutMs, reconnectDelayMs, type GenConnection, type RunHooks } from './gen-connection.js'
import { ResponseParser, kIncomplete, kProtocolError } from './response-parser.js'

export class HttpConnection implements GenConnection {
  readonly capacity: number
  inFlight: number
  ready: boolean
  connecting: boolean
  private readonly hooks: RunHooks
  private readonly host: string
  private readonly port: number
  private readonly request: Buffer
  private readonly parser: ResponseParser
  private socket: net.Socket | null
  private originMs: number
  private sentMs: number
  private measured: boolean
  private attempts: number
  private lastError: string | null

  constructor (hooks: RunHooks, host: string, port: number, request: Buffer) {
    this.capacity = 1
    this.inFlight = 0
    this.ready = false
    this.connecting = false
    this.hooks = hooks
    this.host = host
    this.port = port
    this.request = request
    this.parser = new ResponseParser()
    this.socket = null
    this.originMs = 0
    this.sentMs = 0
    this.measured = false
    this.attempts = 0
    this.lastError = null
  }

  connect (): void {
    this.parser.reset()
    this.lastError = null
    this.connecting = true
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true })
    this.socket = socket
    socket.setTimeout(kConnectTimeoutMs)
    socket.on('connect', () => {
      this.connecting = false
      this.attempts = 0
      socket.setTimeout(0)
      this.ready = true
      this.hooks.onReady(this)
    })
    socket.on('timeout', () => { socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ECONNTIMEOUT' })) })
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('error', (err: NodeJS.ErrnoException) => { this.lastError = err.code ?? err.message })
    socket.on('close', () => { this.onClose(socket) })
  }

  send (originMs: number, nowMs: number, measured: boolean): void {
    this.inFlight = 1
    this.originMs = originMs
    this.sentMs = nowMs
    this.measured = measured
    this.socket!.write(this.request)
  }

  flush (): void { /* one write per request already */ }

  sweep (nowMs: number, timeoutMs: number): void {
    if (this.inFlight === 0 || nowMs - this.sentMs <= timeoutMs) return
    this.inFlight = 0
    this.drop()
    this.hooks.onTimeout(this, this.measured)
    this.hooks.onReconnect()
    if (!this.hooks.finished) this.connect()
  }

  shutdown (): number {
    const measured = this.inFlight > 0 && this.measured ? 1 : 0
    this.inFlight = 0
    this.ready = false
    const socket = this.socket
    this.socket = null
    socket?.destroy()
    return measured
  }

  /** Takes the socket out of service without reporting its close (the caller reports). */
  private drop (): void {
    const socket = this.socket
    this.socket = null
    if (this.ready) { this.ready = false; this.hooks.onDown(this) }
    socket?.destroy()
  }

  private onData (chunk: Buffer): void {
    const status = this.parser.push(chunk)
    if (status === kIncomplete) return
    if (status === kProtocolError || this.inFlight === 0) {
      this.lastError = 'EPROTO'
      this.socket?.destroy()
      return
    }
    const now = performance.now()
    this.inFlight = 0
    if (this.parser.closeAfter) {
      // The server closes after this answer: out of service before the run reuses it.
      this.drop()
      this.hooks.onReconnect()
      if (!this.hooks.finished) this.connect()
    }
    this.hooks.onAnswer(this, this.originMs, this.measured, status >= 200 && status < 300 ? null : String(status), now)
  }

  private onClose (socket: net.Socket): void {
    if (this.socket !== socket) return // replaced already (timeout or Connection: close)
    this.socket = null
    const wasReady = this.ready
    if (this.connecting) {
      this.connecting = false
      this.hooks.onConnectError(this)
    }
    if (wasReady) { this.ready = false; this.hooks.onDown(this) }
    if (this.inFlight > 0) {
      this.inFlight = 0
      this.hooks.onFailed(this, this.measured, this.lastError ?? 'ECLOSED')
    }
    if (this.hooks.finished) return
    if (wasReady) this.hooks.onReconnect()
    // Back off while the server refuses connections, so a dead target is not a hot loop.
    const delay = reconnectDelayMs(this.attempts++)
    setTimeout(() => { if (!this.hooks.finished) this.connect() }, delay)
  }
}
