/**
 * RFC 6455 for the load generator: the upgrade request, its accept check, client frames, and a
 * parser of server frames. Only what a benchmark client needs:
 *
 *   client frame:  [FIN|op] [0x80|len (126: +2 bytes, 127: +8)] [mask key: 00 00 00 00] [payload]
 *   server frame:  [FIN|op] [len ...] [payload]            (servers never mask)
 *
 * The mask key is all zeros, so a frame is its payload unchanged and can be prebuilt once and
 * copied per request (with the request id patched in). RFC 6455 §5.3 wants an unpredictable key
 * to protect intermediaries from browser-borne cache poisoning; a load generator on loopback has
 * no such intermediary, and the server cannot tell the difference.
 *
 * Fragmented messages (continuation frames) are reassembled; pings are answered by the caller.
 */

import { createHash, randomBytes } from 'node:crypto'

export const kOpText = 1
export const kOpBinary = 2
export const kOpClose = 8
export const kOpPing = 9
export const kOpPong = 10

const kGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export function upgradeRequest (host: string, port: number, path: string): { bytes: Buffer, expectedAccept: string } {
  const key = randomBytes(16).toString('base64')
  const bytes = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 'latin1')
  return { bytes, expectedAccept: createHash('sha1').update(key + kGuid).digest('base64') }
}

/**
 * Checks the server's upgrade answer at the start of `data`. Returns the offset of the first
 * frame byte, -1 when the head is not complete yet, or an Error.
 */
export function parseUpgradeResponse (data: Buffer, expectedAccept: string): number | Error {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return data.length > 16_384 ? new Error('upgrade answer head over 16 kB') : -1
  const head = data.toString('latin1', 0, end)
  if (!/^HTTP\/1\.1 101/.test(head)) return new Error(`upgrade refused: ${head.split('\r\n', 1)[0]}`)
  const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)
  if (accept === null || accept[1] !== expectedAccept) return new Error('upgrade answer has a wrong Sec-WebSocket-Accept')
  return end + 4
}

/** A masked (zero key) client frame carrying `payload`. */
export function clientFrame (opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + 4 + n)
  frame[0] = 0x80 | opcode
  if (n < 126) {
    frame[1] = 0x80 | n
  } else if (n < 65_536) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(n, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2)
    frame.writeUInt32BE(n >>> 0, 6)
  }
  frame.writeUInt32BE(0, head)
  frame.set(payload, head + 4)
  return frame
}

/** Bytes before the payload of a client frame of this payload length. */
export function clientFrameHeaderBytes (payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65_536 ? 4 : 10) + 4
}

export interface FrameSink {
  /** A complete text or binary message. `payload` is only valid during the call. */
  message (opcode: number, payload: Buffer): void
  /** A control frame (close, ping, pong). */
  control (opcode: number, payload: Buffer): void
}

/** Parses a stream of server frames; `push` returns an Error on a protocol violation. */
export class ServerFrameParser {
  private pending: Buffer | null
  private fragments: Buffer[]
  private fragmentOpcode: number

  constructor () {
    this.pending = null
    this.fragments = []
    this.fragmentOpcode = 0
  }

  reset (): void {
    this.pending = null
    this.fragments = []
    this.fragmentOpcode = 0
  }

  push (chunk: Buffer, sink: FrameSink): Error | null {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = null
    let pos = 0
    while (data.length - pos >= 2) {
      const b0 = data[pos]!
      const b1 = data[pos + 1]!
      if ((b0 & 0x70) !== 0) return new Error('RSV bits set (no extension was negotiated)')
      if ((b1 & 0x80) !== 0) return new Error('masked frame from the server')
      let len = b1 & 0x7f
      let head = 2
      if (len === 126) {
        if (data.length - pos < 4) break
        len = data.readUInt16BE(pos + 2)
        head = 4
      } else if (len === 127) {
        if (data.length - pos < 10) break
        len = data.readUInt32BE(pos + 2) * 2 ** 32 + data.readUInt32BE(pos + 6)
        head = 10
      }
      if (data.length - pos < head + len) break
      const payload = data.subarray(pos + head, pos + head + len)
      pos += head + len
      const fin = (b0 & 0x80) !== 0
      const opcode = b0 & 0x0f
      if (opcode >= 8) {
        sink.control(opcode, payload)
      } else if (opcode === 0) {
        if (this.fragments.length === 0) return new Error('continuation frame without a first fragment')
        this.fragments.push(Buffer.from(payload))
        if (fin) {
          const whole = Buffer.concat(this.fragments)
          this.fragments = []
          sink.message(this.fragmentOpcode, whole)
        }
      } else if (fin) {
        sink.message(opcode, payload)
      } else {
        this.fragmentOpcode = opcode
        this.fragments = [Buffer.from(payload)]
      }
    }
    if (pos < data.length) this.pending = Buffer.from(data.subarray(pos))
    return null
  }
}
