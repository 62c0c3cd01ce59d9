/**
 * The capture files' writer thread (capture-writer.ts hands it chunks of closed bars): renders the
 * CSV, compresses it and appends it, rotates and deletes files, all with blocking calls on this
 * thread so that none of it runs on the server's event loop.
 */
import { appendFileSync, mkdirSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { workerData } from 'node:worker_threads'
import { gzipSync } from 'node:zlib'
import { formatFloat32 } from '../features/candle-file.js'
import { kCaptureFilePattern, kCaptureHeader, kCaptureNumeric } from '../features/capture-file.js'
import { kFeatureSlot } from './bar-track.js'

export interface CaptureWorkerData {
  readonly dir: string
  readonly maxBytes: number
  readonly maxAgeS: number
  readonly fileS: number
}

export interface CaptureChunk {
  readonly kind: 'chunk'
  readonly rows: number
  readonly numbers: Float64Array
  readonly symbols: string[]
  readonly pServing: Float64Array
  readonly vServing: string[]
  readonly pShadow: Float64Array
  readonly vShadow: string[]
}

/** The writer's counters after a chunk, and a warning when the chunk could not be written. */
export interface CaptureReply {
  rowsWritten: number
  rowsFailed: number
  bytesWritten: number
  filesDeleted: number
  files: number
  bytesOnDisk: number
  errors: Record<string, number>
  warning: { code: string, message: string } | null
}

/** Age retention is checked this often besides at each new file. */
const kRetentionCheckMs = 60_000

interface FileEntry { path: string, bytes: number, mtimeMs: number }

const options = workerData as CaptureWorkerData
let files: FileEntry[] | null = null
let current: FileEntry | null = null
let currentStartMs = 0
let lastRetentionMs = 0
const stats = { rowsWritten: 0, rowsFailed: 0, bytesWritten: 0, filesDeleted: 0 }
const errors: Record<string, number> = {}

function render (c: CaptureChunk): string {
  let out = ''
  const n = c.numbers
  for (let r = 0; r < c.rows; r++) {
    const base = r * kCaptureNumeric
    let line = String(n[base])
    for (let k = 1; k < kFeatureSlot; k++) line += ',' + String(n[base + k])
    for (let k = kFeatureSlot; k < kCaptureNumeric; k++) line += ',' + formatFloat32(n[base + k]!)
    line += ',' + encodeURIComponent(c.symbols[r]!) +
      ',' + String(c.pServing[r]) + ',' + encodeURIComponent(c.vServing[r]!) +
      ',' + String(c.pShadow[r]) + ',' + encodeURIComponent(c.vShadow[r]!)
    out += line + '\n'
  }
  return out
}

function scan (): FileEntry[] {
  mkdirSync(options.dir, { recursive: true })
  const out: FileEntry[] = []
  for (const name of readdirSync(options.dir).filter(n => kCaptureFilePattern.test(n)).sort()) {
    const path = join(options.dir, name)
    try {
      const st = statSync(path)
      if (st.isFile()) out.push({ path, bytes: st.size, mtimeMs: st.mtimeMs })
    } catch { /* gone meanwhile */ }
  }
  return out
}

function newFile (now: number): FileEntry {
  const stamp = new Date(now).toISOString().replace(/[-:.]/g, '') // 20261201T153035123Z
  let path = join(options.dir, `capture-${stamp}.csv.gz`)
  for (let i = 1; ; i++) {
    try {
      writeFileSync(path, new Uint8Array(0), { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 100) throw err
      path = join(options.dir, `capture-${stamp}-${i}.csv.gz`)
    }
  }
  const entry = { path, bytes: 0, mtimeMs: now }
  files!.push(entry)
  current = entry
  currentStartMs = now
  lastRetentionMs = 0
  return entry
}

/** Oldest first past capture_max_bytes (never the file being written), then by age. */
function enforce (now: number): void {
  const list = files!
  let total = 0
  for (const f of list) total += f.bytes
  const ageDue = now - lastRetentionMs >= kRetentionCheckMs
  if (ageDue) lastRetentionMs = now
  while (list.length > 1) {
    const oldest = list[0]!
    const tooOld = ageDue && now - oldest.mtimeMs > options.maxAgeS * 1000
    if (total <= options.maxBytes && !tooOld) break
    try { unlinkSync(oldest.path) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    list.shift()
    total -= oldest.bytes
    stats.filesDeleted++
  }
}

/** Piscina task: one chunk (one writer thread, so the module's state is the writer's). */
export default function write (c: CaptureChunk): CaptureReply {
  let warning: CaptureReply['warning'] = null
  let file: FileEntry | null = null
  let before = 0
  try {
    files ??= scan()
    const now = Date.now()
    file = current
    let text = render(c)
    if (file === null || now - currentStartMs >= options.fileS * 1000 || file.bytes >= options.maxBytes / 4) {
      file = newFile(now)
      text = kCaptureHeader + '\n' + text
    }
    before = file.bytes
    const gz = gzipSync(text)
    appendFileSync(file.path, gz)
    file.bytes += gz.length
    file.mtimeMs = now
    stats.bytesWritten += gz.length
    stats.rowsWritten += c.rows
    enforce(now)
  } catch (err) {
    stats.rowsFailed += c.rows
    const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
    errors[code] = (errors[code] ?? 0) + 1
    if (file !== null) {
      // A partial gzip member would make the rest of the file unreadable: cut it back, and start
      // a new file next time (a full disk may have freed up by then).
      try { truncateSync(file.path, before) } catch { /* the warning says enough */ }
      file.bytes = before
      current = null
    }
    warning = { code, message: `capture to ${options.dir} failed (${code}): ${(err as Error).message}; ${c.rows} rows lost` }
  }
  let bytesOnDisk = 0
  for (const f of files ?? []) bytesOnDisk += f.bytes
  return { ...stats, files: files?.length ?? 0, bytesOnDisk, errors: { ...errors }, warning }
}
