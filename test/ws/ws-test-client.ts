/**
 * A raw WebSocket test client for /ws (the `ws` package): sends exactly the bytes a test gives it,
 * decodes every server message with the client library's decoders, and waits for messages and
 * for the close with time limits. Not a *.test.ts file: tap does not run it.
 */
import WebSocket from 'ws'
import { decodeServerBinary, decodeServerText, type ServerMessage } from '../../src/client/wire-codec.js'
import { marketFields } from '../helpers/market-request.js'

export type Received = ServerMessage & { readonly binary: boolean }

/**
 * Default bound of every wait below. Only a failing test ever waits this long (no test expects a
 * message or a close not to come), so it is sized for a loaded CI machine, not for speed.
 */
const kWaitMs = 20_000

export interface CloseInfo { readonly code: number, readonly reason: string }

export class RawWs {
  readonly socket: WebSocket
  readonly closed: Promise<CloseInfo>
  private readonly queue: Received[] = []
  private waiter: ((m: Received) => void) | null = null

  private constructor (socket: WebSocket) {
    this.socket = socket
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => { resolve({ code, reason: reason.toString() }) })
    })
    socket.on('error', () => { /* followed by 'close', which the tests observe */ })
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const m = isBinary
        ? decodeServerBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        : decodeServerText(data.toString('utf8'))
      const received = { ...m, binary: isBinary } as Received
      const w = this.waiter
      if (w !== null) {
        this.waiter = null
        w(received)
      } else {
        this.queue.push(received)
      }
    })
  }

  /** Connects to `url` (ws://host:port/ws...) and resolves once the socket is open. */
  static async open (url: string, timeoutMs = kWaitMs): Promise<RawWs> {
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 64 << 20 })
    socket.binaryType = 'nodebuffer'
    const raw = new RawWs(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => { resolve() })
      socket.once('error', reject)
    })
    return raw
  }

  send (data: Uint8Array | string): void {
    this.socket.send(data, { binary: typeof data !== 'string' })
  }

  /** The next server message, or a rejection after `timeoutMs`. */
  next (timeoutMs = kWaitMs): Promise<Received> {
    const queued = this.queue.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        reject(new Error(`no message within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiter = (m) => { clearTimeout(timer); resolve(m) }
    })
  }

  /** The next `n` messages (any order), each within `timeoutMs`. */
  async take (n: number, timeoutMs = kWaitMs): Promise<Received[]> {
    const out: Received[] = []
    for (let i = 0; i < n; i++) out.push(await this.next(timeoutMs))
    return out
  }

  /** Resolves with the close, or rejects after `timeoutMs`. */
  waitClose (timeoutMs = kWaitMs): Promise<CloseInfo> {
    return Promise.race([
      this.closed,
      new Promise<CloseInfo>((_resolve, reject) => { setTimeout(() => { reject(new Error(`not closed within ${timeoutMs} ms`)) }, timeoutMs).unref() }),
    ])
  }

  close (): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate()
  }
}

export function wsUrl (httpUrl: string, query = ''): string {
  return `${httpUrl.replace(/^http/, 'ws')}/ws${query}`
}

export { prng as rng } from '../helpers/prng.js'

const kBarMs = 60_000
/** Start of a bar two hours back: explicit timestamps keep requests in known, past bars. */
export const kBaseBar = Math.floor((Date.now() - 2 * 3_600_000) / kBarMs) * kBarMs

/** A full, valid request (HTTP field names) for `symbol`, varied so the model's answers differ. */
export function marketRequest (symbol: string, rand: () => number, bar = 0): Record<string, number | string> {
  return { ...marketFields(symbol, rand), timestamp_ms: kBaseBar + bar * kBarMs }
}
