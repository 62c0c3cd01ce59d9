/**
 * The seam between a generator thread's run loop (bench/lib/generator-worker.ts: schedule,
 * counting, histograms) and a transport's connection (HTTP/1.1 in http-connection.ts, WebSocket
 * in ws-connection.ts). A connection carries up to `capacity` requests at once: 1 for HTTP/1.1
 * without pipelining, the pipelining depth for the WebSocket. It reports every request's end to
 * the run exactly once: answered, failed (connection lost), or timed out.
 */

export interface GenConnection {
  /** Requests it can carry at once. Known once `ready`. */
  readonly capacity: number
  readonly inFlight: number
  /** Connected (and, for the WebSocket, upgraded and greeted): it can take requests. */
  readonly ready: boolean
  /** A connection attempt is under way. */
  readonly connecting: boolean
  connect (): void
  /** Sends one request; only while ready and inFlight < capacity. */
  send (originMs: number, nowMs: number, measured: boolean): void
  /** Writes anything batched (corked) now: before the thread blocks in a precise sleep. */
  flush (): void
  /** Reports requests unanswered for more than timeoutMs as timeouts. */
  sweep (nowMs: number, timeoutMs: number): void
  /** Closes for good; returns how many measured requests were still in flight. */
  shutdown (): number
}

/** What a connection tells the run. */
export interface RunHooks {
  readonly finished: boolean
  /** Connected (again): it can take `capacity` requests. */
  onReady (conn: GenConnection): void
  /** It can take no more requests until onReady (its in-flight ones end through onFailed). */
  onDown (conn: GenConnection): void
  /** An answer: outcome null for success, else the HTTP status or wire error code. */
  onAnswer (conn: GenConnection, originMs: number, measured: boolean, outcome: string | null, nowMs: number): void
  /** A request lost with its connection (ECONNRESET, EPROTO, ...). */
  onFailed (conn: GenConnection, measured: boolean, code: string): void
  onTimeout (conn: GenConnection, measured: boolean): void
  /** A connection attempt failed (refused, timed out, upgrade refused). */
  onConnectError (conn: GenConnection): void
  onReconnect (): void
}

/** Retry delay after `attempts` failed connects in a row: immediate first, then 40 ms doubling to 1 s. */
export function reconnectDelayMs (attempts: number): number {
  return attempts === 0 ? 0 : Math.min(1000, 20 * 2 ** attempts)
}

export const kConnectTimeoutMs = 5000
