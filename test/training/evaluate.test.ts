/**
 * The training pipeline's honest evaluation (training/evaluate.py, called by train.py) finds an
 * edge that is planted in a synthetic series and finds none in a random walk.
 *
 * training/evaluate_selftest.py writes two synthetic matrices and runs the real train.py
 * walk-forward recipe on each (XGBoost, Platt calibration, the ONNX export checked with
 * onnxruntime-node), plus direct checks of the backtest arithmetic, the Bonferroni bar, Platt
 * scaling and the feature_reference format; it prints every check as JSON and this test asserts
 * each one. Python is used for training only: /usr/bin/python3 with Debian's python3-xgboost,
 * python3-onnx, python3-numpy, python3-pandas (.ci/run installs them). Without xgboost the test
 * is skipped with a message, never passed silently.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { kPython, pythonImports } from '../helpers/python.js'

const kRoot = fileURLToPath(new URL('../../', import.meta.url))

interface Check { name: string, ok: boolean, detail: unknown }
interface Run { verdict: string, model: string }

// two small trainings: ~20 s on idle cores, more on a shared CI machine
t.setTimeout(300_000)

if (!pythonImports('xgboost, onnx, numpy, pandas')) {
  t.pass('skipped: the training evaluation needs Python with xgboost', {
    skip: `${kPython} cannot import xgboost, onnx, numpy and pandas: install python3-xgboost python3-onnx ` +
      'python3-numpy python3-pandas (Debian)',
  })
} else {
  t.test('walk-forward evaluation: planted edge found, random walk has none', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'evaluate-selftest-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const stdout = await new Promise<string>((resolve, reject) => {
      // bounded: two small walk-forward trainings take ~20 s on 2 idle cores
      execFile(kPython, [join(kRoot, 'training/evaluate_selftest.py'), dir],
        { cwd: kRoot, timeout: 280_000, maxBuffer: 64 << 20 }, (err, out, errOut) => {
          if (err !== null) reject(new Error(`evaluate_selftest.py failed: ${err.message}\n${errOut}`))
          else resolve(out)
        })
    })
    const result = JSON.parse(stdout) as { checks: Check[], runs: Record<string, Run> }
    t.ok(result.checks.length >= 25, `${result.checks.length} checks ran`)
    for (const check of result.checks) {
      t.ok(check.ok, check.name, check.ok ? {} : { detail: check.detail })
    }
    t.match(result.runs.planted?.verdict, /^edge: /, 'planted: verdict names the variants with an edge')
    t.equal(result.runs.random_walk?.verdict, 'no edge', 'random walk: no edge')

    // the calibrated export of the planted run answers like its golden rows in the server's runtime
    const model = result.runs.planted!.model
    const golden = JSON.parse(readFileSync(model.replace(/\.onnx$/, '.golden.json'), 'utf8')) as
      { rows: Array<Array<number | null>>, probabilities: number[] }
    const F = golden.rows[0]!.length
    const data = new Float32Array(golden.rows.length * F)
    golden.rows.forEach((row, i) => { row.forEach((v, j) => { data[i * F + j] = v === null ? Number.NaN : v }) })
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 })
    t.teardown(() => session.release())
    const out = await session.run({ features: new ort.Tensor('float32', data, [golden.rows.length, F]) }, ['probabilities'])
    const p = out.probabilities!.data as Float32Array
    let worst = 0
    for (let i = 0; i < golden.rows.length; i++) worst = Math.max(worst, Math.abs(p[2 * i + 1]! - golden.probabilities[i]!))
    t.ok(worst <= 1e-5, `calibrated ONNX vs XGBoost + Platt on the golden rows: max |diff| ${worst.toExponential(2)}`)
  })
}
