import { basename, dirname, extname, join } from 'node:path'
import { ModelIncompatibleError, ModelLoadError } from '../errors.js'
import { kFeatureCount, kFeatureNames, kFeatureSetVersion } from '../features/feature-spec.js'
import { kMaxMetadataBytes, readRegularFile } from './model-file.js'
import { parseInputSpec, type InputSpec } from '../features/window-input.js'

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
  checkBarMs(meta, barMs, `model ${meta.model_version}`)
}

/** A model trained on other bars than the server builds would read every window and return wrong. */
function checkBarMs (meta: ModelMetadata, barMs: number, who: string): void {
  if (meta.bar_ms !== undefined && meta.bar_ms !== barMs) {
    throw new ModelIncompatibleError(`${who} was trained on ${meta.bar_ms} ms bars, the server is configured for bar_ms=${barMs}`)
  }
}

/** Feature set version a windowed member's metadata names: `window-gaf-v1`, `window-sequence-v1`. */
export function windowFeatureSetVersion (kind: 'gaf' | 'sequence'): string { return `window-${kind}-v1` }

/**
 * The input a model declares (metadata `input`; absent: tabular), checked against what the server
 * computes: a tabular model by `checkFeatureSchema`, a windowed one by its feature set version and
 * its channel list (feature_names must be the channels, in order). `who` names the model in
 * messages ("member gaf_cnn_phase2_v1 of set ensemble_phase2_v1").
 */
export function checkModelInput (meta: ModelMetadata, barMs: number, who = `model ${meta.model_version}`): InputSpec {
  let spec: InputSpec
  try {
    spec = parseInputSpec(meta.input)
  } catch (err) {
    throw new ModelIncompatibleError(`${who}: metadata ${(err as Error).message}`)
  }
  if (spec.kind === 'tabular') {
    try {
      checkFeatureSchema(meta, barMs)
    } catch (err) {
      throw new ModelIncompatibleError(`${who}: ${(err as Error).message}`)
    }
    return spec
  }
  const version = windowFeatureSetVersion(spec.kind)
  if (meta.feature_set_version !== version) {
    throw new ModelIncompatibleError(`${who} declares a ${spec.kind} input, so its feature_set_version must be "${version}", got "${meta.feature_set_version}"`)
  }
  const names = meta.feature_names
  if (names.length !== spec.channels.length || names.some((n, i) => n !== spec.channels[i])) {
    throw new ModelIncompatibleError(`${who}: feature_names [${names.join(', ')}] differ from its input channels [${spec.channels.join(', ')}]`)
  }
  checkBarMs(meta, barMs, who)
  return spec
}
