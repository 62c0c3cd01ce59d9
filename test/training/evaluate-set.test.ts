/**
 * training/evaluate_set.py scores a model set (tree + windowed member, weighted mean of P(up), a
 * member without a complete window left out) against its members, choosing the weight on the
 * validation rows only. training/evaluate_set_selftest.py checks the serving rule, that the
 * weight comes from validation and never from test (a member informative on validation and
 * backwards on test must be chosen and then reported worse), the Bonferroni count, a refused
 * grid, and one end-to-end run on a tiny generated random walk with the shipped GAF-CNN and tree
 * files in onnxruntime-node (scripts/score-onnx.ts). Skipped with a message, never passed
 * silently, when /usr/bin/python3 lacks xgboost, numpy or pandas.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { kPython, pythonImports } from '../helpers/python.js'

const kRoot = fileURLToPath(new URL('../../', import.meta.url))

interface Check { name: string, ok: boolean, detail: unknown }

// a few small XGBoost fits and two onnxruntime-node runs: ~15 s on 2 shared cores
t.setTimeout(180_000)

if (!pythonImports('xgboost, numpy, pandas')) {
  t.pass('skipped: the model-set evaluation needs Python with xgboost', {
    skip: `${kPython} cannot import xgboost, numpy and pandas: install python3-xgboost python3-numpy python3-pandas (Debian)`,
  })
} else {
  t.test('model-set evaluation: serving rule, weight from validation only, end to end', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'evaluate-set-selftest-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(kPython, [join(kRoot, 'training/evaluate_set_selftest.py'), dir],
        { cwd: kRoot, timeout: 170_000, maxBuffer: 64 << 20 }, (err, out, errOut) => {
          if (err !== null) reject(new Error(`evaluate_set_selftest.py failed: ${err.message}\n${errOut}`))
          else resolve(out)
        })
    })
    const result = JSON.parse(stdout) as { checks: Check[] }
    t.ok(result.checks.length >= 17, `${result.checks.length} checks ran`)
    for (const check of result.checks) {
      t.ok(check.ok, check.name, check.ok ? {} : { detail: check.detail })
    }
  })
}
