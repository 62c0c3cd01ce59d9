/**
 * The feature state file: every symbol's rolling windows, so that a server restarted after a
 * deploy or a crash answers exactly as one that kept running, instead of NaN features for the
 * next hour (60-bar windows).
 *
 *   offset    bytes
 *   0         8     magic "MLFSTATE"
 *   8         4     format version (u32 LE), kStateFormatVersion
 *   12        4     byte order of the records: 1 little-endian, 2 big-endian (u32 LE)
 *   16        4     record slots: float64s per symbol, SymbolState.stateLength (u32 LE)
 *   20        4     name slot bytes, kNameSlotBytes (u32 LE)
 *   24        8     bar_ms (f64 LE)
 *   32        8     written at, epoch ms (f64 LE)
 *   40        1     length n of the feature set version
 *   41        23    feature set version (ASCII), zero-padded
 *   64        ...   one entry per symbol, least recently used first:
 *                     1 byte name length, 39 bytes name (ASCII, zero-padded),
 *                     record slots x 8 bytes: SymbolState.saveTo, float64 in the host's order
 *   end - 40  4     entry count (u32 LE), then 4 zero bytes
 *   end - 32  32    SHA-256 of every byte before it
 *
 * Binary float64, never decimal text: running sums carry rounding that must come back bit for bit.
 * Every entry has the same size and starts on an 8-byte boundary, so saving and loading are
 * `Float64Array.set` copies, not per-number parsing. The writer goes through a temporary file,
 * fsync and rename, so a crash mid-save leaves the previous file whole.
 */
import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { endianness } from 'node:os'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { StateFileError } from '../errors.js'
import { kSymbolPattern } from '../protocol/request-fields.js'
import { kFeatureSetVersion } from './feature-spec.js'
import type { FeatureStore } from './feature-store.js'
import type { SymbolState } from './symbol-state.js'

export const kStateMagic = 'MLFSTATE'
export const kStateFormatVersion = 1
const kHeaderBytes = 64
const kVersionField = 41
const kVersionFieldBytes = kHeaderBytes - kVersionField
/** A symbol is at most 32 characters (kSymbolPattern); 40 keeps every record 8-byte aligned. */
const kNameSlotBytes = 40
const kTrailerBytes = 8 + 32
const kByteOrder = endianness() === 'LE' ? 1 : 2
/**
 * Entries serialized per file write. Each chunk is copied and hashed synchronously, then written
 * while the event loop serves requests. 64 entries (~238 KB) keep each synchronous slice near
 * 0.4 ms (measured median at 10,000 symbols, on 2 loaded cores; 256 entries made it ~1.5 ms), so
 * a periodic save delays a request by about that much at worst, not by the whole save.
 */
const kChunkEntries = 64
/**
 * The size bound counts at least this many symbols, so that a file saved under the default
 * max_symbols still loads (keeping the most recent) after max_symbols is lowered.
 */
const kBoundMinSymbols = 10_000

export interface SaveResult {
  readonly symbols: number
  readonly bytes: number
  readonly ms: number
}

export interface LoadResult {
  /** Symbols put back into the store. */
  readonly restored: number
  /** Symbols left out because their last bar is further back than max_gap_bars allows. */
  readonly stale: number
  /** Symbols left out because max_symbols is smaller than the file's count (the least recent go). */
  readonly overLimit: number
  readonly bytes: number
  readonly ms: number
  /** When the file was written (epoch ms). */
  readonly savedAtMs: number
}

/** Float64 slots of one symbol's state in this build. */
function recordSlots (store: FeatureStore): number {
  return store.newState().stateLength
}

function entryBytes (store: FeatureStore): number {
  return kNameSlotBytes + recordSlots(store) * 8
}

/** Largest file `loadFeatureState` reads for this store; bigger ones are refused unread. */
export function maxStateFileBytes (store: FeatureStore): number {
  return kHeaderBytes + kTrailerBytes + entryBytes(store) * Math.max(store.maxSymbols, kBoundMinSymbols)
}

/**
 * Writes every symbol's state to `path` atomically: `path.tmp`, fsync, rename over `path`, fsync
 * of the folder. The symbols are listed once at the start; each is copied when its chunk is
 * written, so a save during traffic holds every symbol as it was at some moment of the save (the
 * shutdown save, after the drain, is one moment). Symbols evicted meanwhile are left out.
 */
export async function saveFeatureState (store: FeatureStore, path: string, nowMs = Date.now()): Promise<SaveResult> {
  const started = performance.now()
  const entries = store.entries()
  const slots = recordSlots(store)
  const perEntry = kNameSlotBytes + slots * 8
  // Its own ArrayBuffer at offset 0: the Float64Array view needs 8-byte alignment.
  const chunk = new ArrayBuffer(Math.max(kHeaderBytes, kTrailerBytes, perEntry * Math.min(kChunkEntries, Math.max(entries.length, 1))))
  const bytes = Buffer.from(chunk)
  const slotsView = new Float64Array(chunk)
  const hash = createHash('sha256')
  const tmp = `${path}.tmp`
  let fh: FileHandle | null = await open(tmp, 'w')
  let total = 0
  let count = 0
  try {
    writeHeader(bytes, slots, store.barMs, nowMs)
    total += await writeHashed(fh, hash, bytes.subarray(0, kHeaderBytes))

    for (let from = 0; from < entries.length; from += kChunkEntries) {
      const to = Math.min(from + kChunkEntries, entries.length)
      let n = 0
      for (let i = from; i < to; i++) {
        const [symbol, state] = entries[i]!
        // Evicted (or evicted and re-created) while earlier chunks were being written.
        if (!store.holds(symbol, state)) continue
        const at = n * perEntry
        bytes.fill(0, at, at + kNameSlotBytes)
        bytes[at] = symbol.length
        bytes.write(symbol, at + 1, kNameSlotBytes - 1, 'latin1')
        state.saveTo(slotsView, (at + kNameSlotBytes) / 8)
        n++
      }
      total += await writeHashed(fh, hash, bytes.subarray(0, n * perEntry))
      count += n
    }

    bytes.fill(0, 0, 8)
    bytes.writeUInt32LE(count, 0)
    total += await writeHashed(fh, hash, bytes.subarray(0, 8))
    total += await writeAll(fh, hash.digest())
    await fh.sync()
    await fh.close()
    fh = null
    await rename(tmp, path)
    await syncFolder(dirname(path))
  } catch (err) {
    if (fh !== null) await fh.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  return { symbols: count, bytes: total, ms: performance.now() - started }
}

function writeHeader (bytes: Buffer, slots: number, barMs: number, nowMs: number): void {
  bytes.fill(0, 0, kHeaderBytes)
  bytes.write(kStateMagic, 0, 8, 'latin1')
  bytes.writeUInt32LE(kStateFormatVersion, 8)
  bytes.writeUInt32LE(kByteOrder, 12)
  bytes.writeUInt32LE(slots, 16)
  bytes.writeUInt32LE(kNameSlotBytes, 20)
  bytes.writeDoubleLE(barMs, 24)
  bytes.writeDoubleLE(nowMs, 32)
  bytes[40] = kFeatureSetVersion.length
  bytes.write(kFeatureSetVersion, kVersionField, kVersionFieldBytes, 'latin1')
}

async function writeHashed (fh: FileHandle, hash: ReturnType<typeof createHash>, data: Uint8Array): Promise<number> {
  hash.update(data)
  return writeAll(fh, data)
}

async function writeAll (fh: FileHandle, data: Uint8Array): Promise<number> {
  let done = 0
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done)
    done += bytesWritten
  }
  return data.length
}

/** Makes the rename itself durable: without it a power loss can bring back the old directory entry. */
async function syncFolder (folder: string): Promise<void> {
  let dir: FileHandle | null = null
  try {
    dir = await open(folder, fsConstants.O_RDONLY)
    await dir.sync()
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the file itself is already synced.
  } finally {
    await dir?.close().catch(() => {})
  }
}

/**
 * Restores the states saved in `path` into an empty store. Returns null when there is no file
 * (a first start). Throws `StateFileError` (store untouched) when the file is too large, cut
 * short, fails its checksum, or was written for other features, another bar length or another
 * layout. Symbols whose last bar is more than max_gap_bars behind the current one are left out,
 * since their first request would reset them anyway; of the rest, the max_symbols most recently
 * used are kept, in their saved order.
 */
export async function loadFeatureState (store: FeatureStore, path: string, nowMs = Date.now()): Promise<LoadResult | null> {
  const started = performance.now()
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new StateFileError('unreadable', `cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err)
  }
  let file: Uint8Array
  try {
    const { size } = await fh.stat()
    const limit = maxStateFileBytes(store)
    if (size > limit) {
      throw new StateFileError('too_large', `${size} bytes, more than the ${limit} that max_symbols = ${store.maxSymbols} allows`)
    }
    file = new Uint8Array(new ArrayBuffer(size))
    let done = 0
    while (done < size) {
      const { bytesRead } = await fh.read(file, done, size - done, done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    if (done < size) throw new StateFileError('truncated', `shrank while being read (${done} of ${size} bytes)`)
  } catch (err) {
    if (err instanceof StateFileError) throw err
    throw new StateFileError('unreadable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err)
  } finally {
    await fh.close().catch(() => {})
  }

  const header = checkHeader(store, file)
  const entries = (file.length - kHeaderBytes - kTrailerBytes) / header.perEntry
  const savedAtMs = header.view.getFloat64(32, true)
  const slotsView = new Float64Array(file.buffer, 0, Math.floor(file.length / 8))
  const names = Buffer.from(file.buffer, file.byteOffset, file.length)

  // Newest last in the file: walk back, keeping up to max_symbols symbols that are not stale.
  const currentBar = Math.floor(nowMs / store.barMs)
  const keep: number[] = []
  let stale = 0
  let overLimit = 0
  for (let i = entries - 1; i >= 0; i--) {
    const barIndex = slotsView[(kHeaderBytes + i * header.perEntry + kNameSlotBytes) / 8]!
    if (currentBar - barIndex > store.maxGapBars) stale++
    else if (keep.length >= store.maxSymbols) overLimit++
    else keep.push(i)
  }

  // Every kept record is decoded before any goes in: a bad one refuses the file, store untouched.
  const restored: Array<[string, SymbolState]> = []
  const seen = new Set<string>()
  for (let k = keep.length - 1; k >= 0; k--) {
    const at = kHeaderBytes + keep[k]! * header.perEntry
    const length = names[at]!
    const symbol = names.toString('latin1', at + 1, at + 1 + Math.min(length, kNameSlotBytes - 1))
    if (length === 0 || length >= kNameSlotBytes || !kSymbolPattern.test(symbol) || seen.has(symbol)) {
      throw new StateFileError('bad_record', `entry ${keep[k]!} has an invalid or repeated symbol name`)
    }
    seen.add(symbol)
    const state = store.newState()
    if (!state.restoreFrom(slotsView, (at + kNameSlotBytes) / 8)) {
      throw new StateFileError('bad_record', `entry ${keep[k]!} (${symbol}) is not a valid feature state`)
    }
    restored.push([symbol, state])
  }
  for (const [symbol, state] of restored) store.restore(symbol, state)
  return { restored: restored.length, stale, overLimit, bytes: file.length, ms: performance.now() - started, savedAtMs }
}

/**
 * Identity and integrity, cheapest and most telling first: a file that is not ours says so by its
 * magic; one of another format or layout is named as such before its length or checksum (which
 * that format may define differently) is judged.
 */
function checkHeader (store: FeatureStore, file: Uint8Array): { view: DataView, perEntry: number } {
  if (file.length < kHeaderBytes + kTrailerBytes) {
    throw new StateFileError('truncated', `${file.length} bytes, shorter than a header and trailer`)
  }
  const view = new DataView(file.buffer, file.byteOffset, file.length)
  const text = Buffer.from(file.buffer, file.byteOffset, file.length)
  if (text.toString('latin1', 0, 8) !== kStateMagic) {
    throw new StateFileError('bad_magic', 'not a feature state file (magic bytes differ)')
  }
  const version = view.getUint32(8, true)
  if (version !== kStateFormatVersion) {
    throw new StateFileError('format_version', `format version ${version}, this server reads ${kStateFormatVersion}`)
  }
  if (view.getUint32(12, true) !== kByteOrder) {
    throw new StateFileError('byte_order', 'written on a machine of the other byte order')
  }
  const slots = view.getUint32(16, true)
  const ownSlots = recordSlots(store)
  if (slots !== ownSlots || view.getUint32(20, true) !== kNameSlotBytes) {
    throw new StateFileError('record_layout', `records of ${slots} values, this server keeps ${ownSlots}`)
  }
  const perEntry = kNameSlotBytes + slots * 8
  const body = file.length - kHeaderBytes - kTrailerBytes
  if (body % perEntry !== 0) {
    throw new StateFileError('truncated', `${file.length} bytes is not a whole number of ${perEntry}-byte entries`)
  }
  const digest = createHash('sha256').update(file.subarray(0, file.length - 32)).digest()
  if (!digest.equals(file.subarray(file.length - 32))) {
    throw new StateFileError('checksum', 'SHA-256 checksum does not match the contents')
  }
  const count = view.getUint32(file.length - kTrailerBytes, true)
  if (count !== body / perEntry) {
    throw new StateFileError('bad_record', `trailer counts ${count} entries, the file holds ${body / perEntry}`)
  }
  const versionLength = Math.min(file[40]!, kVersionFieldBytes)
  const featureSet = text.toString('latin1', kVersionField, kVersionField + versionLength)
  if (featureSet !== kFeatureSetVersion) {
    throw new StateFileError('feature_set_version', `feature set ${JSON.stringify(featureSet)}, this server computes ${JSON.stringify(kFeatureSetVersion)}`)
  }
  const barMs = view.getFloat64(24, true)
  if (barMs !== store.barMs) {
    throw new StateFileError('bar_ms', `bar_ms ${barMs}, this server uses ${store.barMs}`)
  }
  return { view, perEntry }
}
