/**
 * Checks that an ONNX graph is the one its metadata describes, with a probe prediction: the input
 * and output names, the input's type and width, and two rows (all missing, all zero) giving two
 * probabilities each in [0, 1]. Runs in each inference worker before it reports ready (see
 * inference-worker.ts): onnxruntime-node loads a model synchronously, so a probe on the main
 * thread would stall every connection for the length of the load.
 */
import * as ort from 'onnxruntime-node'
import { ownedCopy } from '../pool/batch-session.js'
import { ModelIncompatibleError, ModelLoadError, ServiceError } from '../errors.js'
import { checkInputShape, inputDims, type InputSpec } from '../features/window-input.js'

export interface ProbeTarget {
  /** Names the model in messages. */
  readonly modelPath: string
  readonly inputName: string
  readonly outputName: string
  readonly featureCount: number
  /** The declared input (metadata `input`); absent: tabular. */
  readonly input?: InputSpec
}

export async function probeModel (bytes: Uint8Array, target: ProbeTarget): Promise<void> {
  const { modelPath, inputName, outputName, featureCount } = target
  const spec = target.input ?? { kind: 'tabular' }
  const dims = inputDims(spec) ?? [featureCount]
  const rowLength = dims.reduce((a, b) => a * b, 1)
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(ownedCopy(bytes), { intraOpNumThreads: 1, interOpNumThreads: 1 })
  } catch (err) {
    throw new ModelLoadError(`onnxruntime could not load ${modelPath}: ${(err as Error).message}`, err)
  }
  try {
    if (!session.inputNames.includes(inputName)) {
      throw new ModelIncompatibleError(`model input "${inputName}" not found in ${modelPath} (inputs: ${session.inputNames.join(', ')})`)
    }
    if (!session.outputNames.includes(outputName)) {
      throw new ModelIncompatibleError(`model output "${outputName}" not found in ${modelPath} (outputs: ${session.outputNames.join(', ')})`)
    }
    const input = session.inputMetadata.find(m => m.name === inputName)
    if (input !== undefined && input.isTensor && spec.kind !== 'tabular') {
      const reason = input.type === 'float32' ? checkInputShape(spec, input.shape, featureCount) : `model input "${inputName}" is ${input.type}, the server sends float32`
      if (reason !== null) throw new ModelIncompatibleError(`${modelPath}: ${reason}`)
    } else if (input !== undefined && input.isTensor) {
      const shape = input.shape
      const width = shape[shape.length - 1]
      if (input.type !== 'float32' || shape.length !== 2 || (typeof width === 'number' && width !== featureCount)) {
        throw new ModelIncompatibleError(`model input "${inputName}" is ${input.type}[${shape.join(', ')}], the server sends float32[batch, ${featureCount}]`)
      }
    }
    // Tabular: one row all missing, one all zero. Windowed: all zero (a flat window's GADF) and all
    // -1 (its GASF): what any window can look like.
    const rows = new Float32Array(2 * rowLength)
    rows.fill(spec.kind === 'tabular' ? Number.NaN : -1, 0, rowLength)
    let out: ort.InferenceSession.ReturnType
    try {
      out = await session.run({ [inputName]: new ort.Tensor('float32', rows, [2, ...dims]) }, [outputName])
    } catch (err) {
      throw new ModelIncompatibleError(`probe prediction failed on ${modelPath}: ${(err as Error).message}`)
    }
    const probs = out[outputName]!
    const data = probs.data as Float32Array
    if (probs.dims.length !== 2 || probs.dims[0] !== 2 || probs.dims[1] !== 2 || !(data instanceof Float32Array)) {
      throw new ModelIncompatibleError(`model output "${outputName}" has shape [${probs.dims.join(', ')}] (${probs.type}), expected float32[batch, 2]`)
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
