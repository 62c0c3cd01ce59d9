/**
 * The `ml-prediction-server` command from source: per-command --help generated from the settings
 * table, --version, the documented exit codes (docs/api.md), check-model on a sound, a mismatched
 * and a missing model.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { describeType, kSettingKeys, kSettings } from '../../src/config/schema.js'

const run = promisify(execFile)
const kVersion = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version

async function cli (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 120_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

t.test('--version, --help, unknown command', async (t) => {
  t.same(await cli('--version'), { code: 0, stdout: `${kVersion}\n`, stderr: '' })
  const help = await cli('--help')
  t.equal(help.code, 0)
  for (const command of ['serve', 'check-model FILE', 'replay', 'bench']) t.match(help.stdout, command)
  t.match(help.stdout, /Exit codes: 0 success; 1 .*2 bad usage/s)
  t.equal((await cli()).code, 2, 'no command: usage, 2')
  const unknown = await cli('frobnicate')
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command "frobnicate"/)
})

t.test('serve --help lists every setting from the settings table', async (t) => {
  const help = await cli('serve', '--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: ml-prediction-server serve/)
  for (const key of kSettingKeys) {
    const spec = kSettings[key]
    t.match(help.stdout, `--${spec.flag} `, `--${spec.flag}`)
    t.match(help.stdout, `Env ${spec.env}, default ${JSON.stringify(spec.default)}`, `${key} env and default`)
  }
  t.match(help.stdout, /Exit codes: 0 .* 1 .* 2 invalid configuration/)
  const bad = await cli('serve', '--port', 'eighty')
  t.equal(bad.code, 2, 'invalid configuration: 2')
  t.match(bad.stderr, /port/)
})

t.test('check-model: sound 0, mismatched 1, usage 2; help from the settings table', async (t) => {
  const help = await cli('check-model', '--help')
  t.equal(help.code, 0)
  t.match(help.stdout, `--bar-ms <int>  ${kSettings.bar_ms.description} Must be ${describeType(kSettings.bar_ms)}.`)

  const ok = await cli('check-model', 'models/xgboost_phase1_v1.onnx')
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /^ok: models\/xgboost_phase1_v1\.onnx .*model_version xgboost_phase1_v1.*probe prediction ok/)

  const dir = mkdtempSync(join(tmpdir(), 'openapi-check-model-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  copyFileSync('models/xgboost_phase1_v1.onnx', join(dir, 'm.onnx'))
  const meta = JSON.parse(readFileSync('models/xgboost_phase1_v1.json', 'utf8')) as { feature_names: string[] }
  ;[meta.feature_names[0], meta.feature_names[1]] = [meta.feature_names[1]!, meta.feature_names[0]!]
  writeFileSync(join(dir, 'm.json'), JSON.stringify(meta))
  const swapped = await cli('check-model', join(dir, 'm.onnx'))
  t.equal(swapped.code, 1, 'two features swapped: refused')
  t.match(swapped.stderr, /^refused: ERR_MODEL_INCOMPATIBLE: .*feature 0/)

  const bars = await cli('check-model', 'models/xgboost_phase1_v1.onnx', '--bar-ms', '300000')
  t.equal(bars.code, 1, 'another bar length: refused')
  t.match(bars.stderr, /ERR_MODEL_INCOMPATIBLE: .*bar/)

  const missing = await cli('check-model', join(dir, 'nope.onnx'))
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^refused: ERR_MODEL_LOAD: /)

  const set = await cli('check-model', 'models/ensemble_phase2_v1.set.json')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /^ok: model set models\/ensemble_phase2_v1\.set\.json: set_version ensemble_phase2_v1, 2 members/)
  t.match(set.stdout, /member gaf_cnn_phase2_v1: gaf input, weight/)
  const cnn = await cli('check-model', 'models/gaf_cnn_phase2_v1.onnx')
  t.equal(cnn.code, 0, cnn.stderr)
  t.match(cnn.stdout, /gaf input \[gasf_close, gadf_close, gasf_btc\] over 32 bars \(serves only as a member of a model set\)/)
  writeFileSync(join(dir, 'broken.set.json'), JSON.stringify({ set_version: 's', combiner: 'weighted_mean', members: [{ model: 'm.onnx', weight: 1 }] }))
  const brokenSet = await cli('check-model', join(dir, 'broken.set.json'))
  t.equal(brokenSet.code, 1, 'a set whose member has two features swapped: refused')
  t.match(brokenSet.stderr, /^refused: ERR_MODEL_INCOMPATIBLE: model set s member m\.onnx: .*feature 0/)

  t.equal((await cli('check-model', '--bar-ms', '5', 'models/xgboost_phase1_v1.onnx')).code, 2, 'bar_ms out of range: 2')
  t.equal((await cli('check-model', 'a.onnx', 'b.onnx')).code, 2, 'two files: 2')
  t.equal((await cli('check-model', '--frob', 'a.onnx')).code, 2, 'unknown flag: 2')
})

t.test('replay and bench --help delegate to their own entry points', async (t) => {
  const replay = await cli('replay', '--help')
  t.equal(replay.code, 0)
  t.match(replay.stdout, /--data-dir/)
  const bench = await cli('bench', '--help')
  t.equal(bench.code, 0)
  t.match(bench.stdout, /--set <name>/)
})
