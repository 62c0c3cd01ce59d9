/**
 * The load generator's vocabulary: what to run (LoadSpec), what crosses to and from the generator
 * threads, and what comes out (LoadResult). Plain data, so results serialise to JSON unchanged.
 */

import type { LatencySummary } from './histogram.js'

/**
 * closed: each connection sends its next request when the previous answer arrives (throughput
 *   test; latency from the actual send, so a stall is seen by one request per connection).
 * open: requests are due at a constant rate whatever the server does; latency counts from the
 *   intended send time (wrk2), so a stall is charged to every request it delayed.
 */
export type LoadMode = 'closed' | 'open'

/**
 * http: keep-alive HTTP/1.1, one request in flight per connection (bench/lib/http-connection.ts).
 * ws-binary / ws-json: the server's /ws with FlatBuffers binary or JSON text frames, pipelined up
 * to `pipeline` requests per connection (bench/lib/ws-connection.ts). Another transport is a
 * GenConnection (bench/lib/gen-connection.ts) and a template here.
 */
export type Transport = 'http' | 'ws-binary' | 'ws-json'

/** A WebSocket request frame, prebuilt by the parent; the generator patches in each request's id. */
export interface WsTemplate {
  /** Upgrade path: /ws, or /ws?format=json so that the hello comes as text. */
  readonly path: string
  readonly binary: boolean
  /** binary: the FlatBuffers Message; its uint32 id (little-endian) sits at byte `idAt`. */
  readonly payload: Uint8Array
  readonly idAt: number
  /** text: the frame is textPrefix + id + textSuffix. */
  readonly textPrefix: string
  readonly textSuffix: string
}

export type RequestTemplate =
  | { readonly kind: 'http', readonly bytes: Uint8Array }
  | { readonly kind: 'ws', readonly ws: WsTemplate }

export interface LoadSpec {
  readonly transport: Transport
  /** HTTP request path (/predict or /predict/batch); /ws for the WebSocket transports. */
  readonly path: string
  /** The body of every request (already JSON text). */
  readonly body: string
  /** Predictions per request: 1 for /predict, the list length for /predict/batch. */
  readonly rowsPerRequest: number
  readonly mode: LoadMode
  readonly connections: number
  /** Requests in flight per connection at most: 1 for HTTP/1.1, the pipelining depth for /ws. */
  readonly pipeline: number
  /** open mode: total requests per second over all threads. */
  readonly rate: number | null
  readonly warmupMs: number
  readonly durationMs: number
  /** A request unanswered this long counts as a timeout; its connection is replaced. */
  readonly timeoutMs: number
  /** closed mode: stop after this many measured requests (the time bound still applies). */
  readonly maxRequests: number | null
  /** Generator worker threads; connections and rate are split between them. */
  readonly threads: number
}

export interface TargetAddress {
  readonly host: string
  readonly port: number
}

/** workerData of one generator thread. */
export interface GeneratorWorkerData {
  readonly host: string
  readonly port: number
  readonly template: RequestTemplate
  readonly mode: LoadMode
  readonly connections: number
  readonly pipeline: number
  /** This thread's share of the rate (req/s), open mode. */
  readonly rate: number
  /** Offset of this thread's first intended send (ms), interleaving threads' schedules. */
  readonly phaseMs: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly timeoutMs: number
  readonly maxRequests: number | null
  readonly progressIntervalMs: number
}

export interface Counts {
  /** Requests written in the measured window (open: intended in the window and then sent). */
  sent: number
  /** Successful answers: HTTP 2xx, or a WebSocket prediction (batch: every item a prediction). */
  ok: number
  /** Other answers: by HTTP status, or by the wire code of a WebSocket error answer
   *  (BATCH_ITEM_ERROR: a batch answer with at least one item refused). */
  non2xx: Record<string, number>
  /** Requests that failed on the socket or the framing, by code (ECONNRESET, EPROTO, ...). */
  errors: Record<string, number>
  /** Requests unanswered after timeoutMs, or still in flight when the run's drain time ran out. */
  timeouts: number
  /** open mode: requests due in the window that could not be sent before the drain ended. */
  unsent: number
  /** open mode: requests due in the window (sent + unsent). */
  intended: number
  /** open mode: measured requests actually written before the window ended (the achieved rate). */
  sentInWindow: number
  /** Connection attempts that failed (not requests: nothing was in flight). */
  connectErrors: number
  /** Connections re-opened after the server closed them or after a timeout. */
  reconnects: number
}

/** All counters at zero: a thread's start, or the sum before merging. */
export function emptyCounts (): Counts {
  return { sent: 0, ok: 0, non2xx: {}, errors: {}, timeouts: 0, unsent: 0, intended: 0, sentInWindow: 0, connectErrors: 0, reconnects: 0 }
}

/** Adds `c` into `into`, the keyed counters key by key. */
export function addCounts (into: Counts, c: Counts): void {
  into.sent += c.sent
  into.ok += c.ok
  into.timeouts += c.timeouts
  into.unsent += c.unsent
  into.intended += c.intended
  into.sentInWindow += c.sentInWindow
  into.connectErrors += c.connectErrors
  into.reconnects += c.reconnects
  for (const [k, v] of Object.entries(c.non2xx)) into.non2xx[k] = (into.non2xx[k] ?? 0) + v
  for (const [k, v] of Object.entries(c.errors)) into.errors[k] = (into.errors[k] ?? 0) + v
}

export type WorkerToParent =
  | { readonly type: 'ready' }
  | { readonly type: 'progress', readonly sent: number, readonly ok: number, readonly failed: number }
  | { readonly type: 'done', readonly result: ThreadResult }
  | { readonly type: 'failed', readonly message: string }

export type ParentToWorker = { readonly type: 'start' }

export interface ThreadResult {
  readonly counts: Counts
  /** Encoded hdr histogram of 2xx latencies in µs. */
  readonly latency: string
  /** open mode: encoded hdr histogram of (actual send - intended send) in µs. */
  readonly sendLag: string | null
  /** Measured window actually covered by this thread (ms): the send window. */
  readonly windowMs: number
  /** From the window's start to the last measured answer (open mode: a backlog drains after the
   *  window, and its answers must not be divided by the window alone). Closed: windowMs. */
  readonly answerSpanMs: number
  /** Event-loop utilisation of this thread over warm-up + window + drain (0..1). */
  readonly elu: number
  /** open mode: requests that waited for a free connection. */
  readonly queuedForConnection: number
  /** Every request this thread wrote, warm-up and drain included (for CPU per request). */
  readonly requestsTotal: number
}

export interface LoadResult {
  readonly spec: LoadSpec
  readonly target: string
  readonly startedAt: string
  readonly counts: Counts
  /** 2xx latencies, µs. open: from the intended send time; closed: from the actual send. */
  readonly latencyUs: LatencySummary
  /** The merged histogram, encoded, so a later run can re-read or re-merge it. */
  readonly histogram: string
  readonly sendLagUs: LatencySummary | null
  readonly windowMs: number
  /** From the window's start to the last answer (ms); throughput divides by this. */
  readonly answerSpanMs: number
  /** Successful answers per second: ok / (window start to last answer). */
  readonly throughput: number
  /** Predictions per second: throughput x rowsPerRequest. */
  readonly predictionsPerSec: number
  /** open mode: requests sent per second in the window, against `spec.rate`. */
  readonly achievedRate: number | null
  /** open mode: false when the generator could not send at the asked rate (achieved < 95%). */
  readonly keptRate: boolean | null
  readonly generator: GeneratorUsage
  readonly perThread: ReadonlyArray<{ readonly ok: number, readonly sent: number, readonly recorded: number }>
}

export interface GeneratorUsage {
  readonly threads: number
  /** CPU time of the bench process over the load (µs), and the load's wall time (ms). */
  readonly cpuUs: number
  readonly wallMs: number
  /** CPU of the bench process (its generator threads and parent) over the load, % of one core. */
  readonly cpuPercent: number
  /** The same per request sent: the generator's own cost. */
  readonly cpuUsPerRequest: number | null
  /** Busiest generator thread's event-loop utilisation; near 1 means the generator was the limit. */
  readonly maxElu: number
  readonly queuedForConnection: number
}
