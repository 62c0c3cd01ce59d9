/**
 * One load-generator thread: its connections (HTTP or WebSocket, bench/lib/gen-connection.ts),
 * its schedule, its counters and its own hdr histograms, shipped encoded to the parent at the
 * end (bench/lib/load-generator.ts merges them).
 *
 * Timeline of a run (performance.now(), this thread's clock):
 *
 *   t0 ──warm-up──> warmEnd ──measured window──> windowEnd ──drain (≤ timeoutMs)──> drainEnd
 *        discarded      counted, by intended (open) or          requests of the window
 *                       actual (closed) send time               finish or become timeouts
 *
 * Open loop, behind schedule at windowEnd: the backlog may still go out until sendEnd
 * (windowEnd + min(1 s, timeoutMs)), then the rest is unsent; drainEnd = sendEnd + timeoutMs, so
 * a request still unanswered at drainEnd really waited timeoutMs (not just cut off by the end).
 *
 * Closed loop: every connection keeps `capacity` requests in flight (1 for HTTP, the pipelining
 * depth for /ws); an answer sends the next one at once. Latency counts from the actual send.
 *
 * Open loop (wrk2): request k is due at t0 + phase + k/rate whatever happened before. A request
 * that could not go out on time (no free connection or slot, or this thread was late) is sent as
 * soon as it can, and its latency still counts from its due time, so a server stall is charged to
 * every request it delayed. Due times are computed, not queued, so a backlog costs no memory.
 * Free capacity is a FIFO of tokens, one per request a connection can still take.
 *
 * Sending on time without burning a core: libuv timers have 1 ms resolution, which would add up
 * to a millisecond of the generator's own lateness to every latency. When nothing is in flight
 * (so no answer can be kept waiting) the thread sleeps the last stretch in Atomics.wait, whose
 * timeout is sub-millisecond, and spins only the final ~0.1 ms (its measured overshoot). With
 * requests in flight it stays in the event loop: answers wake it, and each wake sends what is due.
 * The time spent so is reported apart (send lag) and excluded from the thread's busy figure.
 */

import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import type { GenConnection, RunHooks } from './gen-connection.js'
import { createHistogram, encodeHistogram } from './histogram.js'
import { HttpConnection } from './http-connection.js'
import { emptyCounts, type GeneratorWorkerData, type ParentToWorker, type ThreadResult, type WorkerToParent } from './load-types.js'
import { WsConnection } from './ws-connection.js'

const data = workerData as GeneratorWorkerData
const port = parentPort!
const isOpen = data.mode === 'open'

/** Start sleeping precisely (instead of a libuv timer) this close to a due time. */
const kPreciseWindowMs = 2
/**
 * Atomics.wait overshoots its timeout (timer slack plus the wake-up: ~95 µs p50, ~115 µs p90 on
 * the 2-vCPU VM this was written on), so the thread wakes this much early and spins the rest.
 * The margin follows the measured overshoot (an average, plus a quarter, plus 20 µs), within
 * [30, 400] µs: enough to be on time, little enough that the spin costs ~1% CPU at 100 req/s.
 */
let spinMarginMs = 0.15
let overshootMs = 0.1

const latency = createHistogram()
const sendLag = isOpen ? createHistogram() : null
const counts = emptyCounts()
let allSent = 0
let allOk = 0
let allFailed = 0
let queuedForConnection = 0

let started = false
let t0 = 0
let warmEnd = 0
let windowEnd = 0
let drainEnd = 0
/** Open loop: no request is sent after this (see the timeline). */
let sendEnd = 0
/** closed mode: when sending stopped (window end, or maxRequests reached). */
let sendingStoppedAt = 0
let inFlight = 0
let sleptMs = 0

// Open-loop schedule.
const intervalMs = isOpen ? 1000 / data.rate : 0
let firstDue = 0
let nextK = 0
/** First k due at or after windowEnd: the schedule ends there. */
let endK = 0
/** First k due at or after warmEnd: the measured ones are [measuredK, endK). */
let measuredK = 0
/**
 * One entry per request a connection can still take (open mode), first in first out: requests
 * rotate over every connection, so none sits idle long enough for the server's keep-alive timeout
 * (uWS closes HTTP connections idle for 10 s) while the others carry the load.
 */
class TokenQueue {
  private items: Array<GenConnection | null>
  private head: number
  length: number

  constructor () {
    this.items = new Array<GenConnection | null>(64).fill(null)
    this.head = 0
    this.length = 0
  }

  push (conn: GenConnection): void {
    if (this.length === this.items.length) {
      const grown = new Array<GenConnection | null>(this.items.length * 2).fill(null)
      for (let i = 0; i < this.length; i++) grown[i] = this.items[(this.head + i) % this.items.length]!
      this.items = grown
      this.head = 0
    }
    this.items[(this.head + this.length) % this.items.length] = conn
    this.length++
  }

  shift (): GenConnection {
    const conn = this.items[this.head]!
    this.items[this.head] = null
    this.head = (this.head + 1) % this.items.length
    this.length--
    return conn
  }

  /** Drops every token of `conn` (it went down); rare, so a rebuild is fine. */
  remove (conn: GenConnection): void {
    const kept: GenConnection[] = []
    while (this.length > 0) { const c = this.shift(); if (c !== conn) kept.push(c) }
    for (const c of kept) this.push(c)
  }
}
const free = new TokenQueue()
/** Last moment the open-loop pool was seen with no free capacity. */
let lastEmptyAt = -1
/** Last measured answer (open mode): answers of a backlog arrive after the window. */
let lastMeasuredAnswerAt = 0
let wakeTimer: NodeJS.Timeout | null = null
let wakeAt = Infinity

const sleepCell = new Int32Array(new SharedArrayBuffer(4))

const hooks: RunHooks & { finished: boolean } = {
  finished: false,
  onReady (conn) {
    if (!started) { reportReady(conn); return }
    fill(conn)
  },
  onDown (conn) {
    if (isOpen) free.remove(conn)
  },
  onAnswer (conn, originMs, measured, outcome, nowMs) {
    inFlight--
    if (outcome === null) {
      allOk++
      if (measured) {
        counts.ok++
        latency.recordValue(Math.round((nowMs - originMs) * 1000))
        lastMeasuredAnswerAt = nowMs
      }
    } else {
      allFailed++
      if (measured) counts.non2xx[outcome] = (counts.non2xx[outcome] ?? 0) + 1
    }
    next(conn)
  },
  onFailed (_conn, measured, code) {
    inFlight--
    allFailed++
    if (measured) counts.errors[code] = (counts.errors[code] ?? 0) + 1
    maybeFinish()
  },
  onTimeout (conn, measured) {
    inFlight--
    allFailed++
    if (measured) counts.timeouts++
    next(conn)
  },
  onConnectError (conn) {
    counts.connectErrors++
    // A connection that cannot connect before the start still counts towards 'ready' (its
    // failures are counted and reported), so a dead target cannot hang the start.
    if (!started) reportReady(conn)
  },
  onReconnect () { counts.reconnects++ },
}

const connections: GenConnection[] = []
const template = data.template
for (let i = 0; i < data.connections; i++) {
  connections.push(template.kind === 'http'
    ? new HttpConnection(hooks, data.host, data.port, Buffer.from(template.bytes.buffer, template.bytes.byteOffset, template.bytes.byteLength))
    : new WsConnection(hooks, data.host, data.port, template.ws, data.pipeline))
}
const reported = new Set<GenConnection>()

function post (message: WorkerToParent): void {
  port.postMessage(message)
}

function reportReady (conn: GenConnection): void {
  if (reported.has(conn)) return
  reported.add(conn)
  if (reported.size === connections.length) post({ type: 'ready' })
}

/** A connection came up (or came back): give it all the requests it can take. */
function fill (conn: GenConnection): void {
  if (hooks.finished) return
  if (isOpen) {
    if (free.length === 0) lastEmptyAt = performance.now()
    for (let i = conn.inFlight; i < conn.capacity; i++) free.push(conn)
    pump()
  } else {
    while (conn.ready && conn.inFlight < conn.capacity && sendClosed(conn)) { /* keep the pipeline full */ }
  }
}

/** One request of `conn` ended: its place goes to the next request. */
function next (conn: GenConnection): void {
  if (!hooks.finished && conn.ready) {
    if (isOpen) {
      if (free.length === 0) lastEmptyAt = performance.now()
      free.push(conn)
      pump()
      return
    }
    sendClosed(conn)
  }
  maybeFinish()
}

function write (conn: GenConnection, origin: number, now: number, measured: boolean): void {
  inFlight++
  allSent++
  if (measured) {
    counts.sent++
    if (now < windowEnd) counts.sentInWindow++
  }
  conn.send(origin, now, measured)
}

/** closed mode: sends the next request on `conn`; false when the run stopped sending. */
function sendClosed (conn: GenConnection): boolean {
  const now = performance.now()
  if (now >= windowEnd || (data.maxRequests !== null && counts.sent >= data.maxRequests)) {
    if (sendingStoppedAt === 0) sendingStoppedAt = Math.min(now, windowEnd)
    maybeFinish()
    return false
  }
  write(conn, now, now, now >= warmEnd)
  return true
}

function pump (): void {
  if (hooks.finished) return
  for (;;) {
    let now = performance.now()
    while (nextK < endK && free.length > 0 && now < sendEnd) {
      const due = firstDue + nextK * intervalMs
      if (due > now) break
      const conn = free.shift()
      const measured = nextK >= measuredK
      if (measured) {
        sendLag!.recordValue(Math.round((now - due) * 1000))
        // The pool was empty at some moment after this request fell due: it waited for capacity.
        if (lastEmptyAt >= due) queuedForConnection++
      }
      if (free.length === 0) lastEmptyAt = now
      write(conn, due, now, measured)
      nextK++
      now = performance.now()
    }
    if (nextK >= endK || now >= sendEnd) { maybeFinish(); return }
    if (free.length === 0) return // an answer will call pump() again
    const due = firstDue + nextK * intervalMs
    const wait = due - performance.now()
    if (wait <= 0) continue
    if (inFlight === 0 && wait <= kPreciseWindowMs && !connections.some((c) => c.connecting)) {
      for (const c of connections) c.flush()
      preciseSleepUntil(due)
      continue
    }
    armWake(inFlight === 0 ? due - kPreciseWindowMs : due)
    return
  }
}

function preciseSleepUntil (due: number): void {
  const before = performance.now()
  const sleepFor = due - before - spinMarginMs
  if (sleepFor > 0) {
    Atomics.wait(sleepCell, 0, 0, sleepFor)
    const over = performance.now() - before - sleepFor
    overshootMs = overshootMs * 0.9 + over * 0.1
    spinMarginMs = Math.min(0.4, Math.max(0.03, overshootMs * 1.25 + 0.02))
  }
  while (performance.now() < due) { /* spin the last stretch */ }
  sleptMs += performance.now() - before
}

function armWake (at: number): void {
  if (wakeTimer !== null && wakeAt <= at) return
  if (wakeTimer !== null) clearTimeout(wakeTimer)
  wakeAt = at
  wakeTimer = setTimeout(onWake, Math.max(0, at - performance.now()))
}

function onWake (): void {
  wakeTimer = null
  wakeAt = Infinity
  pump()
}

function sweepTimeouts (): void {
  const now = performance.now()
  for (const conn of connections) conn.sweep(now, data.timeoutMs)
  if (now >= drainEnd) finish()
  else maybeFinish()
}

function maybeFinish (): void {
  if (hooks.finished || !started) return
  if (inFlight > 0) return
  if (isOpen ? nextK < endK && performance.now() < sendEnd : (sendingStoppedAt === 0 && performance.now() < windowEnd)) return
  finish()
}

let sweepTimer: NodeJS.Timeout | null = null
let progressTimer: NodeJS.Timeout | null = null
let eluStart: ReturnType<typeof performance.eventLoopUtilization> | null = null

function start (): void {
  started = true
  t0 = performance.now()
  warmEnd = t0 + data.warmupMs
  windowEnd = warmEnd + data.durationMs
  sendEnd = isOpen ? windowEnd + Math.min(1000, data.timeoutMs) : windowEnd
  drainEnd = sendEnd + data.timeoutMs
  eluStart = performance.eventLoopUtilization()
  if (isOpen) {
    firstDue = t0 + data.phaseMs
    // From the configured durations, not from t0-based sums: (t0 + 200) - t0 need not be 200 in
    // floating point, and the count of due requests must be rate x window exactly.
    const dueIndex = (offsetMs: number): number => Math.max(0, Math.ceil((offsetMs - data.phaseMs) / intervalMs - 1e-9))
    endK = dueIndex(data.warmupMs + data.durationMs)
    measuredK = dueIndex(data.warmupMs)
  }
  sweepTimer = setInterval(sweepTimeouts, Math.max(5, Math.min(100, data.timeoutMs / 4)))
  progressTimer = setInterval(() => {
    post({ type: 'progress', sent: allSent, ok: allOk, failed: allFailed })
  }, data.progressIntervalMs)
  for (const conn of connections) {
    if (conn.ready) fill(conn)
  }
}

function finish (): void {
  if (hooks.finished) return
  hooks.finished = true
  const end = performance.now()
  if (wakeTimer !== null) clearTimeout(wakeTimer)
  if (sweepTimer !== null) clearInterval(sweepTimer)
  if (progressTimer !== null) clearInterval(progressTimer)
  for (const conn of connections) {
    // Still in flight when the drain ran out: timeouts, not dropped.
    counts.timeouts += conn.shutdown()
  }
  if (isOpen) {
    counts.unsent = Math.max(0, endK - Math.max(nextK, measuredK))
    counts.intended = counts.sent + counts.unsent
  }
  const elu = performance.eventLoopUtilization(eluStart!)
  const total = elu.idle + elu.active
  const result: ThreadResult = {
    counts,
    latency: encodeHistogram(latency),
    sendLag: sendLag === null ? null : encodeHistogram(sendLag),
    windowMs: isOpen
      ? data.durationMs
      : Math.max(0, (sendingStoppedAt === 0 ? Math.min(end, windowEnd) : sendingStoppedAt) - warmEnd),
    answerSpanMs: isOpen
      ? Math.max(data.durationMs, lastMeasuredAnswerAt - warmEnd)
      : Math.max(0, (sendingStoppedAt === 0 ? Math.min(end, windowEnd) : sendingStoppedAt) - warmEnd),
    elu: total > 0 ? Math.max(0, elu.active - sleptMs) / total : 0,
    queuedForConnection,
    requestsTotal: allSent,
  }
  post({ type: 'progress', sent: allSent, ok: allOk, failed: allFailed })
  post({ type: 'done', result })
  port.close()
}

port.on('message', (message: ParentToWorker) => {
  if (message.type === 'start') start()
})

process.on('uncaughtException', (err) => {
  post({ type: 'failed', message: err.stack ?? err.message })
  process.exit(1)
})

for (const conn of connections) conn.connect()
