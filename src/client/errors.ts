/**
 * Errors of the client library. Test `err.code`, not `instanceof`: the package may be installed
 * twice in one program, and a class from one copy is not the class of the other.
 */
import type { WireCode } from '../errors.js'

export type ClientErrorCode =
  | 'ERR_CLIENT_TIMEOUT'
  | 'ERR_CLIENT_DISCONNECTED'
  | 'ERR_CLIENT_CLOSED'
  | 'ERR_CLIENT_INVALID_REQUEST'
  | 'ERR_REMOTE'

/** Base class of every error the client rejects with. */
export class PredictionClientError extends Error {
  readonly code: ClientErrorCode
  constructor (code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** No answer within the call's timeout (default 100 ms). A late answer is dropped. */
export class ClientTimeoutError extends PredictionClientError {
  readonly timeoutMs: number
  constructor (timeoutMs: number) {
    super('ERR_CLIENT_TIMEOUT', `timeout after ${timeoutMs}ms`)
    this.timeoutMs = timeoutMs
  }
}

/** The connection dropped (or could not be made) while the call was in flight. */
export class ClientDisconnectedError extends PredictionClientError {
  constructor (message = 'disconnected', options?: { cause?: unknown }) {
    super('ERR_CLIENT_DISCONNECTED', message, options)
  }
}

/** `close()` was called: pending and later calls fail with this. */
export class ClientClosedError extends PredictionClientError {
  constructor () { super('ERR_CLIENT_CLOSED', 'client closed') }
}

/** Refused before sending: more requests or bytes than the server's hello allows. */
export class ClientInvalidRequestError extends PredictionClientError {
  constructor (message: string) { super('ERR_CLIENT_INVALID_REQUEST', message) }
}

/**
 * The server answered with an error. `wireCode` is the contract's stable code; `detail` is
 * FastAPI's 422 list for INVALID_ARGUMENT from validation, else null.
 */
export class RemoteError extends PredictionClientError {
  readonly wireCode: WireCode
  readonly detail: unknown
  /** The HTTP status when the error came over HTTP, else null. */
  readonly statusCode: number | null
  constructor (wireCode: WireCode, message: string, detail: unknown = null, statusCode: number | null = null) {
    super('ERR_REMOTE', `${wireCode}: ${message}`)
    this.wireCode = wireCode
    this.detail = detail
    this.statusCode = statusCode
  }
}
