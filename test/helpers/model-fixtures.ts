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

/**
 * Copies shipped models of `models/` (each `<stem>.onnx` and `<stem>.json`) into `dir`, for
 * model-set tests (a set's members sit in its folder); `edit[stem]` may change that copy's metadata.
 */
export function copyShippedModels (dir: string, stems: readonly string[], edit: Readonly<Record<string, (meta: any) => void>> = {}): void {
  for (const stem of stems) {
    copyFileSync(new URL(`${stem}.onnx`, kModels), join(dir, `${stem}.onnx`))
    const meta = JSON.parse(readFileSync(new URL(`${stem}.json`, kModels), 'utf8')) as Record<string, unknown>
    edit[stem]?.(meta)
    writeFileSync(join(dir, `${stem}.json`), JSON.stringify(meta))
  }
}
