import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import { formatFloat32 } from '../features/candle-file.js'
import { kCaptureFilePattern, kCaptureHeader, kCaptureNumeric } from '../features/capture-file.js'
import { kFeatureSlot } from './bar-track.js'

const gzip = promisify(gzipCallback)

/** Rows the ring holds between flushes; past it rows are dropped (and counted), never queued. */
const kRingRows = 8192
/** How often the ring is written out. */
export const kFlushIntervalMs = 1000
/** Retention (age) is checked this often besides at each new file. */
const kRetentionCheckMs = 60_000
/** One warning per error code at most this often; the counters have every occurrence. */
const kWarnEveryMs = 60_000

export interface CaptureOptions {
  readonly dir: string
  readonly maxBytes: number
  readonly maxAgeS: number
  readonly fileS: number
  readonly warn: (code: string, message: string) => void
  /** Clock, for tests of rotation and retention. */
  readonly now?: () => number
}

interface FileEntry { path: string, bytes: number, mtimeMs: number }

/**
 * Appends closed bars to rotating gzip CSV files, off the request path: `push` copies one row
 * into a preallocated ring; a timer (every kFlushIntervalMs) turns the ring into CSV text,
 * compresses it on the libuv thread pool (zlib async) and appends it as one gzip member (a gzip
 * file may hold many; gunzip reads them as one stream). Bounded on disk: a file is closed after
 * capture_file_s or a quarter of capture_max_bytes, the oldest files go first past
 * capture_max_bytes, and files last written before capture_max_age_s go. An unwritable folder or
 * a full disk costs the rows of that flush (counted, warned), never a request; a failed append is
 * cut back off the file so it stays readable, and the next flush starts a new file.
 */
export class CaptureWriter {
  private readonly options: CaptureOptions
  private readonly now: () => number
  private readonly numbers = new Float64Array(kRingRows * kCaptureNumeric)
  private readonly symbols: string[] = new Array<string>(kRingRows).fill('')
  private readonly pServing = new Float64Array(kRingRows)
  private readonly pShadow = new Float64Array(kRingRows)
  private readonly vServing: string[] = new Array<string>(kRingRows).fill('')
  private readonly vShadow: string[] = new Array<string>(kRingRows).fill('')
  private count = 0
  private timer: NodeJS.Timeout | null = null
  private writing: Promise<void> | null = null
  private files: FileEntry[] | null = null
  private current: FileEntry | null = null
  private currentStartMs = 0
  private lastRetentionMs = 0
  private readonly lastWarn = new Map<string, number>()
  private closed = false
  // Counters for /metrics.
  rowsWritten = 0
  rowsDropped = 0
  bytesWritten = 0
  filesDeleted = 0
  readonly errors = new Map<string, number>()

  constructor (options: CaptureOptions) {
    this.options = options
    this.now = options.now ?? Date.now
  }

  start (): void {
    this.timer = setInterval(() => { void this.flush() }, kFlushIntervalMs)
    this.timer.unref()
  }

  /**
   * Copies one closed bar into the ring: `row` holds kCaptureNumeric numbers (bar-track.ts order).
   * With the ring full (the disk cannot keep up) the row is dropped and counted.
   */
  push (symbol: string, row: Float64Array, pServing: number, vServing: string, pShadow: number, vShadow: string): void {
    if (this.closed) return
    if (this.count === kRingRows) { this.rowsDropped++; return }
    const at = this.count++
    this.numbers.set(row, at * kCaptureNumeric)
    this.symbols[at] = symbol
    this.pServing[at] = pServing
    this.vServing[at] = vServing
    this.pShadow[at] = pShadow
    this.vShadow[at] = vShadow
  }

  /** Writes what the ring holds; one write at a time (a flush during a write waits for it). */
  flush (): Promise<void> {
    if (this.writing !== null) return this.writing
    if (this.count === 0) return Promise.resolve()
    const text = this.render()
    const rows = this.count
    this.count = 0
    this.writing = this.write(text, rows).finally(() => { this.writing = null })
    return this.writing
  }

  /** Stops the timer and writes what is left. */
  async close (): Promise<void> {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null }
    await this.writing
    await this.flush()
    this.closed = true
  }

  get pendingRows (): number { return this.count }

  private render (): string {
    let out = ''
    const n = this.numbers
    for (let r = 0; r < this.count; r++) {
      const base = r * kCaptureNumeric
      let line = String(n[base])
      for (let c = 1; c < kFeatureSlot; c++) line += ',' + String(n[base + c])
      for (let c = kFeatureSlot; c < kCaptureNumeric; c++) line += ',' + formatFloat32(n[base + c]!)
      line += ',' + encodeURIComponent(this.symbols[r]!) +
        ',' + String(this.pServing[r]) + ',' + encodeURIComponent(this.vServing[r]!) +
        ',' + String(this.pShadow[r]) + ',' + encodeURIComponent(this.vShadow[r]!)
      out += line + '\n'
      this.symbols[r] = ''
      this.vServing[r] = ''
      this.vShadow[r] = ''
    }
    return out
  }

  private async write (text: string, rows: number): Promise<void> {
    let file: FileEntry | null = null
    let before = 0
    try {
      if (this.files === null) this.files = await this.scan()
      const now = this.now()
      file = this.current
      if (file === null || now - this.currentStartMs >= this.options.fileS * 1000 || file.bytes >= this.options.maxBytes / 4) {
        file = await this.newFile(now)
        text = kCaptureHeader + '\n' + text
      }
      before = file.bytes
      const gz = await gzip(text)
      await fsp.appendFile(file.path, gz)
      file.bytes += gz.length
      file.mtimeMs = now
      this.bytesWritten += gz.length
      this.rowsWritten += rows
      await this.enforce(now)
    } catch (err) {
      this.rowsDropped += rows
      const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
      this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
      if (file !== null) {
        // A partial gzip member would make the rest of the file unreadable: cut it back, and start
        // a new file next time (a full disk may have freed up by then).
        await fsp.truncate(file.path, before).catch(() => {})
        file.bytes = before
        this.current = null
      }
      this.warnOnce(code, `capture to ${this.options.dir} failed (${code}): ${(err as Error).message}; ${rows} rows lost`)
    }
  }

  private warnOnce (code: string, message: string): void {
    const now = this.now()
    const last = this.lastWarn.get(code)
    if (last !== undefined && now - last < kWarnEveryMs) return
    this.lastWarn.set(code, now)
    this.options.warn(code, message)
  }

  /** The capture files already in the folder (a restart keeps them under the same limits). */
  private async scan (): Promise<FileEntry[]> {
    await fsp.mkdir(this.options.dir, { recursive: true })
    const names = (await fsp.readdir(this.options.dir)).filter(n => kCaptureFilePattern.test(n)).sort()
    const out: FileEntry[] = []
    for (const name of names) {
      const path = join(this.options.dir, name)
      const st = await fsp.stat(path).catch(() => null)
      if (st !== null && st.isFile()) out.push({ path, bytes: st.size, mtimeMs: st.mtimeMs })
    }
    return out
  }

  private async newFile (now: number): Promise<FileEntry> {
    const stamp = new Date(now).toISOString().replace(/[-:.]/g, '') // 20261201T153035123Z
    let path = join(this.options.dir, `capture-${stamp}.csv.gz`)
    for (let i = 1; ; i++) {
      try {
        await fsp.writeFile(path, new Uint8Array(0), { flag: 'wx' })
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 100) throw err
        path = join(this.options.dir, `capture-${stamp}-${i}.csv.gz`)
      }
    }
    const entry = { path, bytes: 0, mtimeMs: now }
    this.files!.push(entry)
    this.current = entry
    this.currentStartMs = now
    this.lastRetentionMs = 0
    return entry
  }

  /** Oldest first past capture_max_bytes (never the file being written), then by age. */
  private async enforce (now: number): Promise<void> {
    const files = this.files!
    let total = 0
    for (const f of files) total += f.bytes
    const ageDue = now - this.lastRetentionMs >= kRetentionCheckMs
    if (ageDue) this.lastRetentionMs = now
    while (files.length > 1) {
      const oldest = files[0]!
      const tooOld = ageDue && now - oldest.mtimeMs > this.options.maxAgeS * 1000
      if (total <= this.options.maxBytes && !tooOld) break
      await fsp.unlink(oldest.path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
      files.shift()
      total -= oldest.bytes
      this.filesDeleted++
    }
  }

  json (): Record<string, unknown> {
    let bytes = 0
    for (const f of this.files ?? []) bytes += f.bytes
    return {
      dir: this.options.dir,
      rows_written: this.rowsWritten,
      rows_dropped: this.rowsDropped,
      bytes_written: this.bytesWritten,
      files: this.files?.length ?? 0,
      bytes_on_disk: bytes,
      files_deleted: this.filesDeleted,
      errors: Object.fromEntries(this.errors),
    }
  }
}
