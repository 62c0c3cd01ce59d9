import { ModelLoadError } from '../errors.js'
import { kFeatureCount } from '../features/feature-spec.js'
import { InferencePool, type WorkerTransport } from '../pool/inference-pool.js'
import { runBatch, type BatchCompletion, type BatchRunner } from '../batching/dynamic-batcher.js'
import { kMaxModelBytes, readRegularFile } from './model-file.js'
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
 * Read, validate, then warm, with nothing heavy on the event loop: the model file (a regular file,
 * read once, asynchronously) and its metadata, checked against the feature schema; then the worker
 * pool, where each worker loads those bytes, checks the graph against the metadata with a probe
 * prediction (model-probe.ts) and warms its session before it reports ready.
 */
export async function loadModel (options: ModelLoadOptions): Promise<LoadedModel> {
  const { modelPath } = options
  const modelBytes = await readRegularFile(modelPath, 'model', kMaxModelBytes, true).catch((err: unknown) => {
    // Start-up prints this one line to a newcomer: say what to do, not only what went wrong.
    throw new ModelLoadError(`${(err as Error).message}: set model_path (MODEL_PATH, --model-path) to an .onnx file with ` +
      'its .json beside it (shipped default: models/xgboost_phase1_v2_calibrated.onnx; training/README.md builds one)', err)
  })
  const meta = await readModelMetadata(modelPath)
  checkFeatureSchema(meta, options.barMs)
  const pool = await InferencePool.start({
    modelPath,
    modelBytes,
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
