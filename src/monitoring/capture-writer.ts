import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { kCaptureNumeric } from '../features/capture-file.js'
import type { CaptureChunk, CaptureReply, CaptureWorkerData } from './capture-worker.js'

/**
 * Rows the ring holds: one per symbol (every symbol closing a bar at the same minute boundary
 * fits), within these bounds; past half of it a flush is started at once, past all of it rows
 * are dropped (and counted), never queued. 4096-32768 rows of ~400 bytes: 1.6-13 MB.
 */
const kMinRingRows = 4096
const kMaxRingRows = 32_768
/** How often the ring is handed to the writer thread. */
export const kFlushIntervalMs = 1000
/** One warning per error code at most this often; the counters have every occurrence. */
const kWarnEveryMs = 60_000
/** Chunks handed to the writer and not yet written, at most; past it the ring keeps filling. */
const kMaxChunksInFlight = 4

// The worker keeps this module's extension: `.ts` when run from source (tests, tsx), `.js` from dist/.
const kWorkerFile = fileURLToPath(new URL(`./capture-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

export interface CaptureOptions {
  readonly dir: string
  readonly maxBytes: number
  readonly maxAgeS: number
  readonly fileS: number
  readonly warn: (code: string, message: string) => void
  /** max_symbols: sizes the ring. */
  readonly symbols?: number
}

/**
 * Appends closed bars to rotating gzip CSV files (capture-file.ts), off the request path and off
 * the event loop: `push` copies one row into a preallocated ring; every kFlushIntervalMs (or at
 * once when the ring is half full) the filled part is copied out and posted to a writer thread
 * (capture-worker.ts), which renders, compresses and appends it as one gzip member (a gzip file
 * may hold many), rotates files and deletes old ones. Bounded on disk: a file is closed after
 * capture_file_s or a quarter of capture_max_bytes, the oldest files go first past
 * capture_max_bytes, and files last written before capture_max_age_s go. An unwritable folder or
 * a full disk costs the rows of that chunk (counted, warned), never a request; a failed append is
 * cut back off the file so it stays readable, and the next chunk starts a new file.
 */
export class CaptureWriter {
  private readonly options: CaptureOptions
  private readonly capacity: number
  private readonly numbers: Float64Array
  private readonly symbols: string[]
  private readonly pServing: Float64Array
  private readonly pShadow: Float64Array
  private readonly vServing: string[]
  private readonly vShadow: string[]
  private count = 0
  private earlyFlush = false
  private timer: NodeJS.Timeout | null = null
  private readonly pool: Piscina<CaptureChunk, CaptureReply>
  private inFlight = 0
  private idleWaiters: Array<() => void> = []
  private closed = false
  private readonly lastWarn = new Map<string, number>()
  // Counters for /metrics (the writer's own, as last reported, plus rows dropped here).
  rowsWritten = 0
  rowsDropped = 0
  bytesWritten = 0
  filesDeleted = 0
  files = 0
  bytesOnDisk = 0
  errors = new Map<string, number>()
  private ringDropped = 0
  private workerLost = 0

  constructor (options: CaptureOptions) {
    this.options = options
    const cap = Math.min(kMaxRingRows, Math.max(kMinRingRows, options.symbols ?? 0))
    this.capacity = cap
    this.numbers = new Float64Array(cap * kCaptureNumeric)
    this.symbols = new Array<string>(cap).fill('')
    this.pServing = new Float64Array(cap)
    this.pShadow = new Float64Array(cap)
    this.vServing = new Array<string>(cap).fill('')
    this.vShadow = new Array<string>(cap).fill('')
    this.flushSoon = this.flushSoon.bind(this)
    const data: CaptureWorkerData = { dir: options.dir, maxBytes: options.maxBytes, maxAgeS: options.maxAgeS, fileS: options.fileS }
    // One thread (Piscina, as the inference pool: it loads the .ts source under tsx in tests).
    this.pool = new Piscina<CaptureChunk, CaptureReply>({
      filename: kWorkerFile,
      workerData: data,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
    })
  }

  start (): void {
    this.timer = setInterval(() => { this.flush() }, kFlushIntervalMs)
    this.timer.unref()
  }

  /**
   * Copies one closed bar into the ring: `row` holds kCaptureNumeric numbers (bar-track.ts order).
   * With the ring full (the writer cannot keep up) the row is dropped and counted.
   */
  push (symbol: string, row: Float64Array, pServing: number, vServing: string, pShadow: number, vShadow: string): void {
    if (this.closed) return
    if (this.count === this.capacity) { this.ringDropped++; this.rowsDropped++; return }
    const at = this.count++
    this.numbers.set(row, at * kCaptureNumeric)
    this.symbols[at] = symbol
    this.pServing[at] = pServing
    this.vServing[at] = vServing
    this.pShadow[at] = pShadow
    this.vShadow[at] = vShadow
    if (at === this.capacity >> 1 && !this.earlyFlush) {
      // A burst (every symbol closing its bar at once): hand over the first half now, off this turn.
      this.earlyFlush = true
      setImmediate(this.flushSoon)
    }
  }

  private flushSoon (): void {
    this.earlyFlush = false
    this.flush()
  }

  /** Hands what the ring holds to the writer thread (a copy: the ring is reused at once). */
  flush (): void {
    const rows = this.count
    if (rows === 0 || this.inFlight >= kMaxChunksInFlight) return
    const chunk: CaptureChunk = {
      kind: 'chunk',
      rows,
      numbers: this.numbers.slice(0, rows * kCaptureNumeric),
      symbols: this.symbols.slice(0, rows),
      pServing: this.pServing.slice(0, rows),
      vServing: this.vServing.slice(0, rows),
      pShadow: this.pShadow.slice(0, rows),
      vShadow: this.vShadow.slice(0, rows),
    }
    this.count = 0
    this.inFlight++
    this.pool.run(chunk, { transferList: [chunk.numbers.buffer as ArrayBuffer, chunk.pServing.buffer as ArrayBuffer, chunk.pShadow.buffer as ArrayBuffer] }).then(
      (reply) => { this.onReply(reply) },
      (err: unknown) => {
        this.rowsDropped += rows
        this.workerLost += rows
        this.errors.set('EWORKER', (this.errors.get('EWORKER') ?? 0) + 1)
        this.warnOnce('EWORKER', `capture writer thread failed: ${(err as Error).message}`)
        this.inFlight--
        this.settle()
      })
  }

  private onReply (m: CaptureReply): void {
    if (m.warning !== null) this.warnOnce(m.warning.code, m.warning.message)
    this.inFlight--
    this.rowsWritten = m.rowsWritten
    this.rowsDropped = this.ringDropped + m.rowsFailed + this.workerLost
    this.bytesWritten = m.bytesWritten
    this.filesDeleted = m.filesDeleted
    this.files = m.files
    this.bytesOnDisk = m.bytesOnDisk
    const failed = this.errors.get('EWORKER')
    this.errors = new Map(Object.entries(m.errors))
    if (failed !== undefined) this.errors.set('EWORKER', failed)
    this.settle()
    if (this.count >= this.capacity >> 1 && !this.closed) this.flush()
  }

  private settle (): void {
    if (this.inFlight > 0 || this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  /** Resolves when every chunk handed over so far has been written (or failed). */
  idle (): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise(resolve => { this.idleWaiters.push(resolve) })
  }

  /** Stops the timer, writes what is left, stops the writer thread. */
  async close (): Promise<void> {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null }
    while (this.count > 0) {
      await this.idle()
      this.flush()
    }
    await this.idle()
    this.closed = true
    await this.pool.close()
  }

  private warnOnce (code: string, message: string): void {
    const now = Date.now()
    const last = this.lastWarn.get(code)
    if (last !== undefined && now - last < kWarnEveryMs) return
    this.lastWarn.set(code, now)
    this.options.warn(code, message)
  }

  json (): Record<string, unknown> {
    return {
      dir: this.options.dir,
      rows_written: this.rowsWritten,
      rows_dropped: this.rowsDropped,
      bytes_written: this.bytesWritten,
      files: this.files,
      bytes_on_disk: this.bytesOnDisk,
      files_deleted: this.filesDeleted,
      errors: Object.fromEntries(this.errors),
    }
  }
}
