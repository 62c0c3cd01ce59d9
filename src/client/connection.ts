/**
 * One persistent WebSocket to the server's /ws, re-established after every loss with exponential
 * backoff and jitter. The socket counts as up only once the server's hello has arrived.
 *
 * A heartbeat (WebSocket ping) detects a peer that vanished without closing TCP: a ping left
 * without pong for one interval terminates the socket, which fails the calls in flight and
 * starts a reconnection.
 */
import WebSocket from 'ws'
import { ClientDisconnectedError } from './errors.js'
import { decodeServerBinary, decodeServerText, type ServerHello, type ServerMessage } from './wire-codec.js'

export interface ReconnectOptions {
  /** First retry delay (ms). Default 50. */
  readonly initialDelayMs?: number
  /** Upper bound of the delay (ms). Default 5000. */
  readonly maxDelayMs?: number
  /** Give up after this many failed attempts in a row. Default Infinity. */
  readonly maxAttempts?: number
}

export interface ConnectionEvents {
  onUp (hello: ServerHello): void
  onMessage (message: ServerMessage): void
  /** The socket went down (or an attempt failed); every call in flight on it must fail now. */
  onDown (err: ClientDisconnectedError, wasUp: boolean): void
  onUndecodable (err: Error): void
}

export interface ConnectionOptions {
  readonly url: string
  readonly connectTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly reconnect: Required<ReconnectOptions>
}

const kBinary = { binary: true } as const
const kText = { binary: false } as const

export const kReconnectDefaults: Required<ReconnectOptions> = { initialDelayMs: 50, maxDelayMs: 5000, maxAttempts: Infinity }

/**
 * Delay before reconnection attempt `attempt` (0-based): exponential, capped, with "equal
 * jitter" (half fixed, half random) so that many clients restarted together do not reconnect in
 * lockstep, while none retries at once.
 */
export function backoffDelayMs (attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const exp = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30))
  return Math.round(exp / 2 + random() * exp / 2)
}

export class ClientConnection {
  private readonly options: ConnectionOptions
  private readonly events: ConnectionEvents
  private socket: WebSocket | null = null
  private hello: ServerHello | null = null
  private attempt = 0
  private retryTimer: NodeJS.Timeout | null = null
  private helloTimer: NodeJS.Timeout | null = null
  private heartbeat: NodeJS.Timeout | null = null
  private awaitingPong = false
  private closed = false
  /** Times the socket came up after having been up before. */
  reconnects = 0
  private everUp = false

  constructor (options: ConnectionOptions, events: ConnectionEvents) {
    this.options = options
    this.events = events
    this.connect = this.connect.bind(this)
    this.beat = this.beat.bind(this)
  }

  /** The hello of the live socket, or null while down. */
  get serverHello (): ServerHello | null { return this.hello }
  get isUp (): boolean { return this.hello !== null }

  start (): void {
    if (this.socket === null && this.retryTimer === null && !this.closed) this.connect()
  }

  /** Sends on the live socket; false when it is down (the caller falls back or fails). */
  send (data: Uint8Array | string): boolean {
    const socket = this.socket
    if (this.hello === null || socket === null || socket.readyState !== WebSocket.OPEN) return false
    socket.send(data, typeof data === 'string' ? kText : kBinary)
    return true
  }

  /** Stops reconnecting and closes the socket (code 1000); resolves when it is closed (at most ~1 s). */
  async close (): Promise<void> {
    this.closed = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const socket = this.socket
    if (socket === null) return
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => { socket.terminate() }, 1000)
      socket.once('close', () => { clearTimeout(force); resolve() })
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate()
      else socket.close(1000, 'client closing')
    })
  }

  private connect (): void {
    this.retryTimer = null
    if (this.closed) return
    const socket = new WebSocket(this.options.url, {
      perMessageDeflate: false,
      handshakeTimeout: this.options.connectTimeoutMs,
    })
    this.socket = socket
    socket.binaryType = 'nodebuffer'
    socket.on('open', () => {
      // The server speaks first; no hello in time means this is not (or no longer) our server.
      this.helloTimer = setTimeout(() => { socket.terminate() }, this.options.connectTimeoutMs)
    })
    socket.on('message', (data: Buffer, isBinary: boolean) => { this.onMessage(socket, data, isBinary) })
    socket.on('pong', () => { this.awaitingPong = false })
    // 'error' is always followed by 'close'; the close handler does the work.
    socket.on('error', () => {})
    socket.on('close', (code: number, reason: Buffer) => { this.onClose(socket, code, reason.toString()) })
  }

  private onMessage (socket: WebSocket, data: Buffer, isBinary: boolean): void {
    if (socket !== this.socket) return
    let message: ServerMessage
    try {
      message = isBinary
        ? decodeServerBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        : decodeServerText(data.toString('utf8'))
    } catch (err) {
      this.events.onUndecodable(err as Error)
      return
    }
    if (message.kind === 'hello') {
      if (this.helloTimer !== null) clearTimeout(this.helloTimer)
      this.helloTimer = null
      this.hello = message.hello
      this.attempt = 0
      if (this.everUp) this.reconnects++
      this.everUp = true
      this.startHeartbeat()
      this.events.onUp(message.hello)
      return
    }
    this.events.onMessage(message)
  }

  private onClose (socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return
    const wasUp = this.hello !== null
    this.socket = null
    this.hello = null
    if (this.helloTimer !== null) clearTimeout(this.helloTimer)
    this.helloTimer = null
    this.stopHeartbeat()
    const what = wasUp ? 'connection lost' : 'could not connect'
    this.events.onDown(new ClientDisconnectedError(`disconnected (${what}: code ${code}${reason === '' ? '' : `, ${reason}`})`), wasUp)
    if (this.closed) return
    if (this.attempt >= this.options.reconnect.maxAttempts) return
    const delay = backoffDelayMs(this.attempt++, this.options.reconnect)
    this.retryTimer = setTimeout(this.connect, delay)
  }

  private startHeartbeat (): void {
    if (this.options.heartbeatIntervalMs <= 0) return
    this.awaitingPong = false
    this.heartbeat = setInterval(this.beat, this.options.heartbeatIntervalMs)
    this.heartbeat.unref()
  }

  private stopHeartbeat (): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.heartbeat = null
  }

  private beat (): void {
    const socket = this.socket
    if (socket === null) return
    if (this.awaitingPong) {
      socket.terminate()
      return
    }
    this.awaitingPong = true
    socket.ping()
  }
}
