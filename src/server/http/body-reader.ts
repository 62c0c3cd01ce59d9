import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { writeError } from './reply.js'

/** What a body read ends in; one of these is called exactly once unless the client aborts. */
export interface BodyTarget {
  onBody (body: Buffer): void
  onBodyTooLarge (): void
  /** Content-Length sent more than once with different values: no body is read. */
  onBadFraming (): void
}

/**
 * Duplicate Content-Length check. The uWS build we ship frames the body by the first
 * Content-Length and getHeader returns only that one (upstream rejects differing values since
 * uWebSockets 601a100, "Reject differing content-lengths"); a front proxy framing by the other
 * one would see a different request boundary (request smuggling). RFC 9112 §6.3 and RFC 9110
 * §8.6: differing values are an error, identical repeats may be taken as one. Module-level
 * state and visitor, so the check allocates no closure per request.
 */
let firstLength: string | null = null
let lengthConflict = false
function visitHeader (key: string, value: string): void {
  if (key !== 'content-length') return
  if (firstLength === null) firstLength = value
  else if (value !== firstLength) lengthConflict = true
}

export function hasConflictingContentLength (req: HttpRequest): boolean {
  firstLength = null
  lengthConflict = false
  req.forEach(visitHeader)
  return lengthConflict
}

/**
 * Answers ERR_BAD_FRAMING and closes, from setImmediate: answered inside the handler, uWS would
 * go on parsing the bytes after the (first-length) body as a next request on this connection
 * and route it. Left pending until then, any such request makes uWS close the connection
 * instead (it refuses a request while one is pending), so nothing smuggled runs.
 */
export function refuseBadFraming (res: HttpResponse, target: { readonly aborted: boolean }): void {
  setImmediate(() => {
    if (!target.aborted) res.cork(() => { writeError(res, 'ERR_BAD_FRAMING') })
  })
}

/**
 * Reads a request body into one buffer, bounded by `maxBytes`.
 *
 * - Content-Length over the limit is refused before a byte is read.
 * - With Content-Length, one buffer of exactly that size is filled; chunked bodies grow by
 *   doubling, never past the limit (no Buffer.concat per chunk).
 * - uWS neuters each chunk's ArrayBuffer when onData returns ("You MUST copy the data of chunk if
 *   isLast is not true"), so every chunk is copied out before the callback ends; only a body that
 *   arrives whole in its last chunk is handed over as a view, and it is consumed synchronously.
 *
 * Must be called synchronously in the uWS handler (the HttpRequest lives on its stack), after the
 * caller has attached onAborted.
 */
export function readBody (res: HttpResponse, req: HttpRequest, maxBytes: number, target: BodyTarget): void {
  const lengthHeader = req.getHeader('content-length')
  if (lengthHeader !== '' && hasConflictingContentLength(req)) {
    target.onBadFraming()
    return
  }
  const declared = lengthHeader === '' ? -1 : Number(lengthHeader)
  if (declared > maxBytes) {
    target.onBodyTooLarge()
    return
  }
  // Allocated only when a body spans several chunks; most arrive whole in one.
  let buffer: Buffer | null = null
  let length = 0
  let refused = false
  res.onData((chunk, isLast) => {
    if (refused) return
    const n = chunk.byteLength
    if (length === 0 && isLast && n <= maxBytes) {
      // The whole body in one chunk: no copy, parsed before this callback returns.
      target.onBody(Buffer.from(chunk, 0, n))
      return
    }
    if (length + n > maxBytes) {
      refused = true
      buffer = null
      target.onBodyTooLarge()
      return
    }
    if (buffer === null && declared > 0) buffer = Buffer.allocUnsafe(declared)
    if (buffer === null || length + n > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(length + n, (buffer?.length ?? 1024) * 2)))
      if (buffer !== null) buffer.copy(grown, 0, 0, length)
      buffer = grown
    }
    buffer.set(new Uint8Array(chunk), length)
    length += n
    if (isLast) target.onBody(buffer.subarray(0, length))
  })
}
