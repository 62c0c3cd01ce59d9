import { basename, dirname, extname, join } from 'node:path'
import { ModelIncompatibleError, ModelLoadError } from '../errors.js'
import { kFeatureCount, kFeatureNames, kFeatureSetVersion } from '../features/feature-spec.js'
import { kMaxMetadataBytes, readRegularFile } from './model-file.js'

/** The part of a model's metadata file the server relies on; the file holds more (training, evaluation). */
export interface ModelMetadata {
  readonly model_version: string
  readonly feature_set_version: string
  readonly feature_names: readonly string[]
  readonly input_name: string
  readonly output_name: string
  readonly bar_ms?: number
  readonly [key: string]: unknown
}

/** `models/x.onnx` -> `models/x.json`: the metadata sits beside the model. */
export function metadataPathFor (modelPath: string): string {
  return join(dirname(modelPath), `${basename(modelPath, extname(modelPath))}.json`)
}

export async function readModelMetadata (modelPath: string): Promise<ModelMetadata> {
  const path = metadataPathFor(modelPath)
  const bytes = await readRegularFile(path, 'model metadata', kMaxMetadataBytes).catch((err: unknown) => {
    throw new ModelLoadError(`${(err as Error).message}: a model needs the .json its export wrote beside the .onnx ` +
      '(training/README.md); check model_path (MODEL_PATH, --model-path)', err)
  })
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (err) {
    throw new ModelLoadError(`model metadata ${path} is not valid JSON: ${(err as Error).message}`, err)
  }
  const m = parsed as Partial<ModelMetadata>
  const missing = (['model_version', 'feature_set_version', 'input_name', 'output_name'] as const)
    .filter(k => typeof m[k] !== 'string' || (m[k] as string).length === 0)
  if (!Array.isArray(m.feature_names)) missing.push('feature_names' as never)
  if (missing.length > 0) throw new ModelLoadError(`model metadata ${path} lacks ${missing.join(', ')}`)
  return m as ModelMetadata
}

/**
 * Refuses a model trained on another feature list: same version, same names in the same order.
 * A silent column shift would make every prediction wrong while looking healthy.
 */
export function checkFeatureSchema (meta: ModelMetadata, barMs: number): void {
  if (meta.feature_set_version !== kFeatureSetVersion) {
    throw new ModelIncompatibleError(`model ${meta.model_version} was trained on feature set "${meta.feature_set_version}", the server computes "${kFeatureSetVersion}"`)
  }
  const names = meta.feature_names
  if (names.length !== kFeatureCount) {
    throw new ModelIncompatibleError(`model ${meta.model_version} expects ${names.length} features, the server computes ${kFeatureCount}`)
  }
  for (let i = 0; i < kFeatureCount; i++) {
    if (names[i] !== kFeatureNames[i]) {
      throw new ModelIncompatibleError(`model ${meta.model_version} feature ${i} is "${names[i]}", the server computes "${kFeatureNames[i]}"`)
    }
  }
  if (meta.bar_ms !== undefined && meta.bar_ms !== barMs) {
    throw new ModelIncompatibleError(`model ${meta.model_version} was trained on ${meta.bar_ms} ms bars, the server is configured for bar_ms=${barMs}`)
  }
}
