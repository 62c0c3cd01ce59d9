import { ModelIncompatibleError, ModelLoadError } from '../errors.js'
import { kFeatureCount } from '../features/feature-spec.js'
import { InferencePool, type WorkerTransport } from '../pool/inference-pool.js'
import { runBatch, type BatchCompletion, type BatchRunner } from '../batching/dynamic-batcher.js'
import { kMaxModelBytes, readRegularFile } from './model-file.js'
import { checkModelInput, readModelMetadata, type ModelMetadata } from './model-metadata.js'
import type { Component } from '../batching/pending-request.js'
import { kRowFloats } from '../features/row-layout.js'
import type { InputSpec } from '../features/window-input.js'

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
  /**
   * Loading a member of a model set (model-set.ts): a windowed input is allowed, and messages
   * name the member. A windowed model alone is refused: some requests have no window (a fresh
   * symbol), and a lone member would have nothing to answer them with.
   */
  readonly member?: { readonly setVersion: string }
}

/** A loaded, validated, warmed model version with its own worker pool. */
export class LoadedModel implements BatchRunner {
  readonly metadata: ModelMetadata
  readonly modelVersion: string
  readonly modelVersionJson: string
  readonly modelPath: string
  readonly loadedAt: Date
  readonly input: InputSpec
  readonly windowed: boolean
  private readonly pool: InferencePool

  constructor (metadata: ModelMetadata, modelPath: string, pool: InferencePool, input: InputSpec) {
    this.metadata = metadata
    this.input = input
    this.windowed = input.kind !== 'tabular'
    this.modelVersion = metadata.model_version
    this.modelVersionJson = JSON.stringify(metadata.model_version)
    this.modelPath = modelPath
    this.loadedAt = new Date()
    this.pool = pool
  }

  get workers (): number { return this.pool.workers }
  get threads (): InferencePool['threads'] { return this.pool.threads }

  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void { this.pool.dispatch(buffer, rows, completion) }
  /** A set member's batch: rows from the set's batch, answers to the member's own buffer. */
  dispatchFrom (source: ArrayBuffer, target: ArrayBuffer, rows: number, completion: BatchCompletion): void { this.pool.dispatchFrom(source, target, rows, completion) }
  /** A single model's answer has no components. */
  componentsOf (_answers: Float32Array, _rows: number, _row: number): readonly Component[] | null { return null }
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
  const who = options.member === undefined ? `model ${meta.model_version}` : `member ${meta.model_version} of set ${options.member.setVersion}`
  const input = checkModelInput(meta, options.barMs, who)
  if (input.kind !== 'tabular' && options.member === undefined) {
    throw new ModelIncompatibleError(`model ${meta.model_version} takes a windowed (${input.kind}) input: it serves only as a member of a model set ` +
      'that also has a tabular member, which answers while a symbol has too little history (docs/phase2.md)')
  }
  const pool = await InferencePool.start({
    modelPath,
    modelBytes,
    inputName: meta.input_name,
    outputName: meta.output_name,
    featureCount: kFeatureCount,
    input,
    rowStride: kRowFloats,
    maxBatchSize: options.maxBatchSize,
    workers: options.workers,
    warmupRuns: options.warmupRuns,
    workerSpinUs: options.workerSpinUs ?? 0,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    ...(options.onWorkerError !== undefined ? { onWorkerError: options.onWorkerError } : {}),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
  })
  return new LoadedModel(meta, modelPath, pool, input)
}
