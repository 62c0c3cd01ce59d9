/**
 * Reads the files a model is made of without ever blocking the event loop on them.
 *
 * `open` is non-blocking, so a FIFO (or a device) named as a model does not hang the server until
 * a writer appears; the opened descriptor is then checked to be a regular file and read through
 * the same descriptor, so the thing checked is the thing read (no swap between a `stat` and an
 * `open`). A directory (`model_path: "."`) is refused the same way, before anything beside it is
 * read.
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { ModelLoadError } from '../errors.js'

/** An ONNX file of a tree ensemble is a few MB; anything over this is refused, not read. */
export const kMaxModelBytes = 1 << 30
/** Metadata is a small JSON file. */
export const kMaxMetadataBytes = 16 << 20

/**
 * The whole file, into a SharedArrayBuffer when `shared` (model bytes are handed to every worker
 * of a pool without a copy per worker, and every worker loads the very bytes that were validated).
 */
export async function readRegularFile (path: string, what: string, maxBytes: number, shared = false): Promise<Uint8Array> {
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new ModelLoadError(code === 'ENOENT' ? `${what} not found at ${path}` : `${what} ${path} cannot be read (${code})`, err)
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) {
      throw new ModelLoadError(`${what} ${path} is not a regular file (${kindOf(stats)})`)
    }
    if (stats.size > maxBytes) {
      throw new ModelLoadError(`${what} ${path} is ${stats.size} bytes, over the ${maxBytes}-byte limit`)
    }
    const bytes = new Uint8Array(shared ? new SharedArrayBuffer(stats.size) : new ArrayBuffer(stats.size))
    let offset = 0
    while (offset < bytes.length) {
      const { bytesRead } = await handle.read(bytes, offset, bytes.length - offset, offset)
      if (bytesRead === 0) throw new ModelLoadError(`${what} ${path} shrank while it was read (${offset} of ${bytes.length} bytes)`)
      offset += bytesRead
    }
    return bytes
  } catch (err) {
    if (err instanceof ModelLoadError) throw err
    throw new ModelLoadError(`${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
  } finally {
    await handle.close()
  }
}

function kindOf (stats: { isDirectory: () => boolean, isFIFO: () => boolean, isSocket: () => boolean, isCharacterDevice: () => boolean, isBlockDevice: () => boolean }): string {
  if (stats.isDirectory()) return 'a directory'
  if (stats.isFIFO()) return 'a FIFO'
  if (stats.isSocket()) return 'a socket'
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device'
  return 'not a file'
}
