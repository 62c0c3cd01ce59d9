/**
 * Model folders for rollout tests, built from the shipped model in a test directory: the same
 * ONNX graph under other versions, a corrupt file, and a metadata file naming other features.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const kModels = new URL('../../models/', import.meta.url)
export const kShippedModel = new URL('xgboost_phase1_v1.onnx', kModels).pathname
export const kShippedMeta = JSON.parse(readFileSync(new URL('xgboost_phase1_v1.json', kModels), 'utf8')) as Record<string, unknown>

/** Writes `<name>.onnx` + `<name>.json` into `dir`; `meta` overrides metadata fields. */
export function writeModel (dir: string, name: string, meta: Record<string, unknown> = {}, onnx: Buffer | null = null): string {
  const path = join(dir, `${name}.onnx`)
  if (onnx === null) copyFileSync(kShippedModel, path)
  else writeFileSync(path, onnx)
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ ...kShippedMeta, ...meta }, null, 2))
  return path
}
