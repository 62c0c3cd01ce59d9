/**
 * The training tests run Debian's Python (training is Python; serving is not). They skip, with a
 * message naming the packages, only where that Python cannot import what training needs.
 */
import { execFileSync } from 'node:child_process'

export const kPython = '/usr/bin/python3'

/** Whether kPython imports every module of `modules` ("xgboost, onnx, pandas"). */
export function pythonImports (modules: string): boolean {
  try {
    execFileSync(kPython, ['-c', `import ${modules}`], { stdio: 'ignore', timeout: 30_000 })
    return true
  } catch {
    return false
  }
}
