/**
 * One onnxruntime-node session as the worker uses it: a batch of rows in, P(up) per row out.
 *
 * onnxruntime-node's public `session.run` defers every call with `setImmediate` and wraps it in
 * two promises and a fresh Tensor per output (onnxruntime-node/dist/backend.js). In a serve loop
 * that has just left `Atomics.wait`, that means one more trip round the worker's event loop per
 * batch. The native binding underneath runs synchronously, so when this version of the package
 * exposes it we call it directly; otherwise (a future layout) the public API is used. Both load
 * the model with the same options and give the same numbers (test/pool/batch-session.test.ts).
 */
import { createRequire } from 'node:module'
import * as ort from 'onnxruntime-node'

export const kSessionOptions = {
  // One intra-op thread: parallelism comes from the worker count, and ORT's own pool would
  // oversubscribe the cores (and spin) with several sessions per process (SERVING-NOTES §3.4).
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
} as const satisfies ort.InferenceSession.SessionOptions

interface NativeSession {
  loadModel (path: string, options: object): void
  loadModel (buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void
  run (feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, { data: unknown }>
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession }
  initOrt: () => void
}

export interface BatchSession {
  /** 'native': the synchronous binding; 'public': onnxruntime-node's InferenceSession. */
  readonly kind: 'native' | 'public'
  /** Probabilities of shape [rows, 2] (class 0, class 1), row-major. Input rows * featureCount floats. */
  run (input: Float32Array, rows: number): Float32Array | Promise<Float32Array>
}

export interface BatchSessionOptions {
  /** Names the model in messages; the file is read from here only when `modelBytes` is absent. */
  readonly modelPath: string
  /**
   * The model file's bytes, read once by the loader (model-file.ts) and shared by the pool, so a
   * worker never opens the path itself. May sit on a SharedArrayBuffer: ORT is given a copy.
   */
  readonly modelBytes?: Uint8Array
  readonly inputName: string
  readonly outputName: string
  readonly featureCount: number
  /** Per-row tensor dims (default `[featureCount]`): `[C, N, N]` for a GAF member, `[C, N]` for a sequence. */
  readonly rowDims?: readonly number[]
  /** Test hook: skip the native binding. */
  readonly forcePublic?: boolean
}

export async function openBatchSession (options: BatchSessionOptions): Promise<BatchSession> {
  const native = options.forcePublic === true ? null : loadNativeBinding()
  if (native !== null) {
    try {
      return new NativeBatchSession(native, options)
    } catch (err) {
      // A load error is the model's, not the binding's: the public API would fail the same way,
      // and its message is the one users know.
      if (!(err instanceof TypeError)) throw err
    }
  }
  const session = options.modelBytes === undefined
    ? await ort.InferenceSession.create(options.modelPath, kSessionOptions)
    : await ort.InferenceSession.create(ownedCopy(options.modelBytes), kSessionOptions)
  return new PublicBatchSession(session, options)
}

/** ORT takes an ArrayBuffer, not a SharedArrayBuffer: `slice` copies into one this thread owns. */
export function ownedCopy (bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice()
}

function loadNativeBinding (): NativeBinding | null {
  try {
    const mod = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>
    if (typeof mod.initOrt !== 'function' || typeof mod.binding?.InferenceSession !== 'function') return null
    return mod as NativeBinding
  } catch {
    return null
  }
}

class NativeBatchSession implements BatchSession {
  readonly kind = 'native'
  private readonly session: NativeSession
  private readonly inputName: string
  private readonly outputName: string
  private readonly rowDims: readonly number[]
  /** Reused per call: the binding reads them, never keeps them. */
  private readonly feeds: Record<string, ort.Tensor> = {}
  private readonly fetches: Record<string, null>
  private readonly runOptions = {}

  constructor (native: NativeBinding, options: BatchSessionOptions) {
    native.initOrt()
    this.session = new native.binding.InferenceSession()
    const sessionOptions = { ...kSessionOptions, executionProviders: [{ name: 'cpu' }] }
    if (options.modelBytes === undefined) {
      this.session.loadModel(options.modelPath, sessionOptions)
    } else {
      const bytes = ownedCopy(options.modelBytes)
      this.session.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, sessionOptions)
    }
    this.inputName = options.inputName
    this.outputName = options.outputName
    this.rowDims = options.rowDims ?? [options.featureCount]
    this.fetches = { [options.outputName]: null }
  }

  run (input: Float32Array, rows: number): Float32Array {
    this.feeds[this.inputName] = new ort.Tensor('float32', input, shapeOf(rows, this.rowDims))
    const out = this.session.run(this.feeds, this.fetches, this.runOptions)[this.outputName]
    const data = out?.data
    if (!(data instanceof Float32Array)) throw new TypeError(`model output ${this.outputName} is not float32`)
    return data
  }
}

class PublicBatchSession implements BatchSession {
  readonly kind = 'public'
  private readonly session: ort.InferenceSession
  private readonly inputName: string
  private readonly outputName: string
  private readonly fetches: string[]
  private readonly rowDims: readonly number[]

  constructor (session: ort.InferenceSession, options: BatchSessionOptions) {
    this.session = session
    this.inputName = options.inputName
    this.outputName = options.outputName
    this.fetches = [options.outputName]
    this.rowDims = options.rowDims ?? [options.featureCount]
  }

  async run (input: Float32Array, rows: number): Promise<Float32Array> {
    const result = await this.session.run({ [this.inputName]: new ort.Tensor('float32', input, shapeOf(rows, this.rowDims)) }, this.fetches)
    return result[this.outputName]!.data as Float32Array
  }
}

/** [rows, ...dims] without a spread: one small array per batch. */
function shapeOf (rows: number, dims: readonly number[]): number[] {
  const shape = new Array<number>(dims.length + 1)
  shape[0] = rows
  for (let i = 0; i < dims.length; i++) shape[i + 1] = dims[i]!
  return shape
}
