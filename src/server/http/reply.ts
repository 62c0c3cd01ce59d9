/**
 * HTTP framing of the answers: status lines, headers, `Connection: close`. The bodies are the
 * protocol's (src/protocol/json-answer.ts); the error bodies are built once per code here.
 */
import type { HttpResponse } from 'uWebSockets.js'
import { kErrorTable, type ErrorCode, type ValidationIssue } from '../../errors.js'
import { errorDetailJson, validationDetailJson } from '../../protocol/json-answer.js'

/**
 * Status lines, constant bodies and error answers, built once. uWS sends a string status line
 * as-is, so every status we use is spelled out here.
 */
export const kStatus = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
  422: '422 Unprocessable Entity',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
} as const satisfies Record<number, string>

export type StatusCode = keyof typeof kStatus

const kJsonType = 'application/json'

interface PrebuiltError {
  readonly status: string
  readonly body: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** uWS closes the connection itself when asked through end(); a hand-written header would not. */
  readonly closeConnection: boolean
}

/** `{"detail": "<message>"}` for every code with an HTTP status, FastAPI's shape. */
const kPrebuilt = Object.fromEntries(
  (Object.keys(kErrorTable) as ErrorCode[]).map((code) => {
    const spec = kErrorTable[code]
    return [code, {
      status: kStatus[spec.statusCode as StatusCode] ?? `${spec.statusCode} Error`,
      body: errorDetailJson(spec.message),
      headers: Object.entries(spec.headers ?? {}).filter(([name]) => name !== 'Connection'),
      closeConnection: spec.headers !== null && 'Connection' in spec.headers,
    }]
  }),
) as unknown as Record<ErrorCode, PrebuiltError>

/**
 * Writes a JSON answer. Call inside `res.cork` when not in the request's synchronous handler.
 * `close`: end with `Connection: close` and close once sent (uWS does both when asked through
 * end(); a hand-written header would not close). Every answer passes it while the server drains,
 * so kept-alive clients reconnect (to another replica) instead of meeting a reset when the
 * connection is closed at the end of the drain.
 */
export function writeJson (res: HttpResponse, status: StatusCode, body: string, close = false): void {
  res.writeStatus(kStatus[status]).writeHeader('Content-Type', kJsonType).end(body, close)
}

/** The prebuilt `{"detail": ...}` answer for an error code, with its headers (Retry-After...). */
export function writeError (res: HttpResponse, code: ErrorCode, detail?: string, close = false): void {
  const e = kPrebuilt[code]
  res.writeStatus(e.status)
  for (let i = 0; i < e.headers.length; i++) res.writeHeader(e.headers[i]![0], e.headers[i]![1])
  res.writeHeader('Content-Type', kJsonType).end(detail === undefined ? e.body : errorDetailJson(detail), e.closeConnection || close)
}

export function writeValidationError (res: HttpResponse, issues: readonly ValidationIssue[], close = false): void {
  res.writeStatus(kStatus[422]).writeHeader('Content-Type', kJsonType).end(validationDetailJson(issues), close)
}

export function writeMethodNotAllowed (res: HttpResponse, allow: string, close = false): void {
  res.writeStatus(kStatus[405]).writeHeader('Allow', allow).writeHeader('Content-Type', kJsonType).end(kPrebuilt.ERR_METHOD_NOT_ALLOWED.body, close)
}

/** A refused request (Outcomes): 422 with its issues when it has some, else the code's answer. */
export function writeRefusal (res: HttpResponse, code: ErrorCode, issues: readonly ValidationIssue[] | null, close = false): void {
  if (issues !== null) writeValidationError(res, issues, close)
  else writeError(res, code, undefined, close)
}
