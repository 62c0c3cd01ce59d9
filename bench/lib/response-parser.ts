/**
 * HTTP/1.1 response framing for the load generator: just enough to know where one response ends
 * and what its status is. Pipelining is off (one request in flight per connection, as wrk and
 * the bot's keep-alive client do), so any byte after a complete response is a protocol error, not
 * the next response.
 *
 * Framing handled: Content-Length, chunked, and bodiless statuses (1xx, 204, 304). A response
 * with neither length nor chunking (body until close) is refused: on a keep-alive benchmark it
 * would make every request pay a reconnect, which must show up as an error, not as latency.
 *
 * Cost: the common case (one response in one chunk, ~200 bytes) is one indexOf, one latin1 slice
 * of the head and two regex tests, about 1 µs; the body is never decoded.
 */

const kHeadEnd = Buffer.from('\r\n\r\n')
const kCrlf = Buffer.from('\r\n')
const kMaxHeadBytes = 16 * 1024
const kContentLength = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n|$)/i
const kChunked = /\r\ntransfer-encoding:[^\r]*chunked/i
const kConnectionClose = /\r\nconnection:[ \t]*close/i

/** `push` results besides a status code (100..599). */
export const kIncomplete = 0
export const kProtocolError = -1

export class ResponseParser {
  /** Why the last `push` returned kProtocolError. */
  error: string | null
  /** The last complete response asked to close the connection. */
  closeAfter: boolean
  private pending: Buffer | null
  /** Total length of the response in `pending` once its head is parsed; -1 before, -2 chunked. */
  private expectedBytes: number
  private status: number

  constructor () {
    this.error = null
    this.closeAfter = false
    this.pending = null
    this.expectedBytes = -1
    this.status = 0
  }

  reset (): void {
    this.error = null
    this.closeAfter = false
    this.pending = null
    this.expectedBytes = -1
    this.status = 0
  }

  /**
   * Feeds bytes from the socket. Returns the status code when a response is complete,
   * kIncomplete when more bytes are needed, kProtocolError (see `error`) otherwise.
   */
  push (chunk: Buffer): number {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = null
    if (this.expectedBytes === -1) {
      const headEnd = data.indexOf(kHeadEnd)
      if (headEnd === -1) {
        if (data.length > kMaxHeadBytes) return this.fail(`response head over ${kMaxHeadBytes} bytes`)
        this.pending = data
        return kIncomplete
      }
      const head = data.toString('latin1', 0, headEnd)
      if (!head.startsWith('HTTP/1.')) return this.fail(`not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 20))}`)
      const status = Number(head.slice(9, 12))
      if (!(status >= 100 && status <= 599)) return this.fail(`bad status line: ${JSON.stringify(head.split('\r\n', 1)[0])}`)
      this.status = status
      this.closeAfter = kConnectionClose.test(head)
      const bodyStart = headEnd + 4
      if (status < 200 || status === 204 || status === 304) {
        this.expectedBytes = bodyStart
      } else {
        const length = kContentLength.exec(head)
        if (length !== null) {
          this.expectedBytes = bodyStart + Number(length[1])
        } else if (kChunked.test(head)) {
          this.expectedBytes = -2
        } else {
          return this.fail('response has neither Content-Length nor chunked framing')
        }
      }
      if (status < 200) {
        // An interim response (100 Continue): drop it and keep waiting for the final one.
        const rest = data.subarray(bodyStart)
        this.expectedBytes = -1
        return rest.length === 0 ? kIncomplete : this.push(rest)
      }
    }
    const end = this.expectedBytes === -2 ? chunkedEnd(data) : this.expectedBytes
    if (end === -1 || data.length < end) {
      this.pending = data
      return kIncomplete
    }
    if (end === -3) return this.fail('malformed chunked body')
    if (data.length > end) return this.fail(`${data.length - end} bytes after a complete response (pipelining is off)`)
    const status = this.status
    this.expectedBytes = -1
    return status
  }

  private fail (message: string): number {
    this.error = message
    this.pending = null
    this.expectedBytes = -1
    return kProtocolError
  }
}

/**
 * Where a chunked response ends (the byte after the last CRLF), -1 if not yet complete, -3 if
 * malformed. Re-scans from the head each time; chunked responses are rare here (uWS and
 * node:http both send Content-Length for `end(body)`).
 */
function chunkedEnd (data: Buffer): number {
  let pos = data.indexOf(kHeadEnd) + 4
  for (;;) {
    const lineEnd = data.indexOf(kCrlf, pos)
    if (lineEnd === -1) return -1
    const sizeText = data.toString('latin1', pos, lineEnd).split(';', 1)[0]!.trim()
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) return -3
    const size = parseInt(sizeText, 16)
    pos = lineEnd + 2
    if (size === 0) {
      // Optional trailers, then an empty line.
      if (data.length < pos + 2) return -1
      if (data[pos] === 13 && data[pos + 1] === 10) return pos + 2
      const trailersEnd = data.indexOf(kHeadEnd, pos - 2)
      return trailersEnd === -1 ? -1 : trailersEnd + 4
    }
    if (data.length < pos + size + 2) return -1
    pos += size + 2
  }
}
