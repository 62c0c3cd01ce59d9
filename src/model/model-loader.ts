import { stat } from 'node:fs/promises'
import * as ort from 'onnxruntime-node'
import { ModelIncompatibleError, ModelLoadError, ServiceError } from '../errors.js'
import { kFeatureCount } from '../features/feature-spec.js'
import { InferencePool, type WorkerTransport } from '../pool/inference-pool.js'
import { runBatch, type BatchCompletion, type BatchRunner } from '../batching/dynamic-batcher.js'
import { checkFeatureSchema, readModelMetadata, type ModelMetadata } from './model-metadata.js'

export interface ModelLoadOptions {
  readonly modelPath: string
  readonly barMs: number
  readonly workers: number
  readonly maxBatchSize: number
  readonly warmupRuns: number
  /** worker_spin_us (default 0). */
  readonly workerSpinUs?: number
  readonly readyTimeoutMs?: number
  readonly onWorkerError?: (err: unknown) => void
  readonly transport?: WorkerTransport
}

/** A loaded, validated, warmed model version with its own worker pool. */
export class LoadedModel implements BatchRunner {
  readonly metadata: ModelMetadata
  readonly modelVersion: string
  readonly modelVersionJson: string
  readonly modelPath: string
  readonly loadedAt: Date
  private readonly pool: InferencePool

  constructor (metadata: ModelMetadata, modelPath: string, pool: InferencePool) {
    this.metadata = metadata
    this.modelVersion = metadata.model_version
    this.modelVersionJson = JSON.stringify(metadata.model_version)
    this.modelPath = modelPath
    this.loadedAt = new Date()
    this.pool = pool
  }

  get workers (): number { return this.pool.workers }
  get threads (): InferencePool['threads'] { return this.pool.threads }

  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void { this.pool.dispatch(buffer, rows, completion) }
  run (buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> { return runBatch(this.pool, buffer, rows) }

  close (force = false): Promise<void> { return this.pool.close(force) }
}

/**
 * Load, validate, then warm: metadata against the feature schema; the ONNX graph's input name,
 * shape and output in a probe session on this thread (a cheap check that fails before any worker
 * starts); a probe prediction; then the worker pool, each worker warming its own session.
 */
export async function loadModel (options: ModelLoadOptions): Promise<LoadedModel> {
  const { modelPath } = options
  const fix = 'set model_path (MODEL_PATH, --model-path) to an .onnx file with its .json beside it ' +
    '(shipped: models/xgboost_phase1_v1.onnx; training/README.md builds one)'
  let isFile: boolean
  try {
    isFile = (await stat(modelPath)).isFile()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    const what = code === 'ENOENT' ? `model not found at ${modelPath}` : `model file ${modelPath} cannot be read (${code})`
    throw new ModelLoadError(`${what}: ${fix}`, err)
  }
  if (!isFile) throw new ModelLoadError(`model_path ${modelPath} is not a file: ${fix}`)
  const meta = readModelMetadata(modelPath)
  checkFeatureSchema(meta, options.barMs)
  await probeSession(modelPath, meta)
  const pool = await InferencePool.start({
    modelPath,
    inputName: meta.input_name,
    outputName: meta.output_name,
    featureCount: kFeatureCount,
    maxBatchSize: options.maxBatchSize,
    workers: options.workers,
    warmupRuns: options.warmupRuns,
    workerSpinUs: options.workerSpinUs ?? 0,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    ...(options.onWorkerError !== undefined ? { onWorkerError: options.onWorkerError } : {}),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
  })
  return new LoadedModel(meta, modelPath, pool)
}

async function probeSession (modelPath: string, meta: ModelMetadata): Promise<void> {
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  } catch (err) {
    throw new ModelLoadError(`onnxruntime could not load ${modelPath}: ${(err as Error).message}`, err)
  }
  try {
    if (!session.inputNames.includes(meta.input_name)) {
      throw new ModelIncompatibleError(`model input "${meta.input_name}" not found in ${modelPath} (inputs: ${session.inputNames.join(', ')})`)
    }
    if (!session.outputNames.includes(meta.output_name)) {
      throw new ModelIncompatibleError(`model output "${meta.output_name}" not found in ${modelPath} (outputs: ${session.outputNames.join(', ')})`)
    }
    const input = session.inputMetadata.find(m => m.name === meta.input_name)
    if (input !== undefined && input.isTensor) {
      const shape = input.shape
      const width = shape[shape.length - 1]
      if (input.type !== 'float32' || shape.length !== 2 || (typeof width === 'number' && width !== kFeatureCount)) {
        throw new ModelIncompatibleError(`model input "${meta.input_name}" is ${input.type}[${shape.join(', ')}], the server sends float32[batch, ${kFeatureCount}]`)
      }
    }
    // A probe: one all-missing row and one zero row must give two probabilities each, in [0, 1].
    const rows = new Float32Array(2 * kFeatureCount)
    rows.fill(Number.NaN, 0, kFeatureCount)
    let out: ort.InferenceSession.ReturnType
    try {
      out = await session.run({ [meta.input_name]: new ort.Tensor('float32', rows, [2, kFeatureCount]) }, [meta.output_name])
    } catch (err) {
      throw new ModelIncompatibleError(`probe prediction failed on ${modelPath}: ${(err as Error).message}`)
    }
    const probs = out[meta.output_name]!
    const data = probs.data as Float32Array
    if (probs.dims.length !== 2 || probs.dims[0] !== 2 || probs.dims[1] !== 2 || !(data instanceof Float32Array)) {
      throw new ModelIncompatibleError(`model output "${meta.output_name}" has shape [${probs.dims.join(', ')}] (${probs.type}), expected float32[batch, 2]`)
    }
    for (const p of data) {
      if (!(p >= 0 && p <= 1)) throw new ModelIncompatibleError(`probe prediction gave probability ${p}, outside [0, 1]`)
    }
  } catch (err) {
    if (err instanceof ServiceError) throw err
    throw new ModelLoadError(`model ${modelPath} failed validation: ${(err as Error).message}`, err)
  } finally {
    await session.release()
  }
}
