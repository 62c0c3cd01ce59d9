/**
 * Where the package's own files are, from source (src/openapi/) or built (dist/src/openapi/)
 * alike: the first folder upwards whose package.json is this package's.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const kPackageName = 'ml-prediction-server'

function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const name = (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name
      if (name === kPackageName) return dir
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`${kPackageName}: package.json not found above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}

/** The package folder (holds package.json, schemas/, models/). */
export const kPackageRoot = findRoot()

export const kPackageVersion: string = (JSON.parse(readFileSync(join(kPackageRoot, 'package.json'), 'utf8')) as { version: string }).version

/** The FlatBuffers schema of /ws binary frames, as shipped. */
export function readFlatBuffersSchema (): string {
  return readFileSync(join(kPackageRoot, 'schemas', 'prediction.fbs'), 'utf8')
}
