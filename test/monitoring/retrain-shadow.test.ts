/**
 * The retrain loop end to end (docs/monitoring.md, "Retrain and shadow a candidate"): a real
 * server with capture_dir gets a few hundred bars over HTTP; scripts/retrain-shadow.sh replays its
 * capture files, trains a candidate with training/config/capture.json (relative split), exports
 * it into the server's models folder with a drift reference, and puts it in shadow mode through
 * the admin API; more bars then give the candidate its own realized scorecard beside the serving
 * model's, on the same bars.
 */
import { execFile, spawn } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { prng } from '../helpers/prng.js'
import { kPython, pythonImports } from '../helpers/python.js'

const kRepo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const kBarMs = 60_000
const kBars = 360
const kMoreBars = 40
const kSymbol = 'RETRAINSYM'
const kVersion = 'retrain_test_v1'
const kToken = 'retrain-test-token-0123456789'

// Training and the export check take ~10 s alone; allow for a busy 2-core machine.
t.setTimeout(240_000)

const skip = pythonImports('xgboost, onnx, pandas') ? false : `${kPython} cannot import xgboost/onnx/pandas (Debian python3-xgboost, python3-onnx, python3-pandas): training cannot run`

t.test('retrain-shadow.sh: capture -> replay -> train -> export -> shadow; /metrics scores both on the same bars', { skip, timeout: 230_000 }, async (t) => {
  const dir = t.testdir({ capture: {}, models: {}, out: {} })
  const captureDir = join(dir, 'capture')
  const modelsDir = join(dir, 'models')
  for (const ext of ['onnx', 'json']) copyFileSync(join(kRepo, `models/xgboost_phase1_v1.${ext}`), join(modelsDir, `xgboost_phase1_v1.${ext}`))

  const { url } = await startServer(t, {
    model_path: join(modelsDir, 'xgboost_phase1_v1.onnx'),
    capture_dir: captureDir,
    admin_token: kToken,
  })

  // Bars whose timestamps are all in the past (max_clock_skew_ms), the last one near the end of
  // its bar so each request closes the previous bar. A random walk: ties are rare but harmless.
  const bar0 = Math.floor(Date.now() / kBarMs) * kBarMs - (kBars + kMoreBars + 5) * kBarMs
  const rand = prng(20261201)
  let close = 600
  let bar = 0
  const refused: string[] = [] // one assertion for all bars, not one per request
  const sendBar = async (): Promise<void> => {
    const open = close
    close = Math.round(open * (1 + (rand() - 0.5) * 0.004) * 100) / 100
    const res = await postJson(`${url}/predict`, {
      symbol: kSymbol,
      price: close,
      open,
      high: Math.max(open, close) * 1.0005,
      low: Math.min(open, close) * 0.9995,
      volume: 1000 + Math.floor(rand() * 500),
      btc_price: 62_000 * (1 + (rand() - 0.5) * 0.002),
      timestamp_ms: bar0 + bar * kBarMs + 59_000,
    })
    if (res.status !== 200) refused.push(`bar ${bar}: ${res.status} ${JSON.stringify(res.body)}`)
    bar++
  }
  for (let i = 0; i < kBars; i++) await sendBar()
  t.strictSame(refused, [], `all ${kBars} bars answered`)

  // A bar is captured when it is scored (one bar after it closed); the writer flushes every second.
  const captured = kBars - 2
  const flushBy = Date.now() + 15_000
  let rows = 0
  while (Date.now() < flushBy) {
    rows = (await getJson(`${url}/metrics`)).body.capture.rows_written
    if (rows >= captured) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.equal(rows, captured, 'every scored bar is in the capture files')

  // The script runs npm, python and node under sh: its own process group, so a timeout (or the
  // test ending early) stops all of them, not only sh.
  const run = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
    const child = spawn('sh', ['scripts/retrain-shadow.sh', captureDir, kSymbol, kVersion, url], {
      cwd: kRepo,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // TRAIN_CONFIG empty: the script's default config, whatever the caller's environment says.
      env: { ...process.env, TRAIN_CONFIG: '', PYTHON: kPython, ADMIN_TOKEN: kToken, MODELS_DIR: modelsDir, MATRIX: join(dir, 'out', `${kSymbol}-capture.csv`) },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    let running = true
    const stop = (): void => { if (running) { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* already gone */ } } }
    const timer = setTimeout(() => { stderr += '\n(killed after 180 s)'; stop() }, 180_000)
    t.teardown(stop)
    child.on('close', (code) => { running = false; clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
  t.equal(run.code, 0, 'the script succeeds')
  if (run.code !== 0) {
    t.comment(run.stdout)
    t.comment(run.stderr)
    return
  }
  t.match(run.stdout, /export: onnxruntime-node [^\n]* max \|diff\|/, 'the export was checked in the serving runtime')
  t.match(run.stdout, /"model_version":\s*"retrain_test_v1"/, 'the admin call answered with the candidate')

  t.ok(existsSync(join(modelsDir, `${kVersion}.onnx`)), 'the candidate model is in the server\'s models folder')
  const meta = JSON.parse(readFileSync(join(modelsDir, `${kVersion}.json`), 'utf8'))
  t.equal(meta.model_version, kVersion)
  t.strictSame(meta.training.split_fractions, { validation_fraction: 0.15, test_fraction: 0.15 }, 'relative split recorded')
  const splits = meta.training.splits
  t.ok(splits.train.rows > splits.validation.rows && splits.validation.rows > 0 && splits.test.rows > 0, 'three non-empty splits')
  t.ok(splits.train.last_bar < splits.validation.first_bar && splits.validation.last_bar < splits.test.first_bar, 'time-ordered splits')
  t.equal(meta.feature_reference?.bins, 10, 'drift reference written')
  t.equal(Object.keys(meta.feature_reference.features).length, meta.n_features)

  // A relative split that cannot work is refused with a clear message, before anything is written.
  const config = JSON.parse(readFileSync(join(kRepo, 'training/config/capture.json'), 'utf8'))
  const refusals: Array<[Record<string, unknown>, RegExp]> = [
    [{ validation_fraction: 0.5, test_fraction: 0.5 }, /validation_fraction \+ test_fraction must be below 1/],
    [{ validation_fraction: 0, test_fraction: 0.15 }, /split\.validation_fraction must be a number between 0 and 1/],
    [{ validation_fraction: 0.15, test_fraction: 0.15, test_start: '2026-04-07T00:00:00Z' }, /either validation_start\/test_start or validation_fraction\/test_fraction/],
  ]
  for (const [split, message] of refusals) {
    const path = join(dir, 'out', 'bad.json')
    writeFileSync(path, JSON.stringify({ ...config, split }))
    const out = join(dir, 'out', 'bad.onnx')
    const bad = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
      execFile(kPython, ['training/train.py', path, '--version', 'bad', '--matrix', join(dir, 'out', `${kSymbol}-capture.csv`), '--out', out],
        { cwd: kRepo, timeout: 60_000 }, (err, _stdout, stderr) => { resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), stderr }) })
    })
    t.equal(bad.code, 1, `split ${JSON.stringify(split)} refused`)
    t.match(bad.stderr, message)
    t.notOk(existsSync(out), 'and no model written')
  }

  let metrics = (await getJson(`${url}/metrics`)).body
  t.equal(metrics.shadow?.model_version, kVersion, '/metrics shows the shadow model')

  // More bars: the candidate answers beside the serving model (its own pool, asynchronously:
  // a short pause per bar lets its answer land before the bar closes) and both are scored on the
  // same realized bars.
  const card = (role: string): any => metrics.realized.models.find((m: any) => m.role === role && m.model_version === (role === 'shadow' ? kVersion : 'xgboost_phase1_v1'))
  for (let i = 0; i < kMoreBars; i++) {
    await sendBar()
    await new Promise(resolve => setTimeout(resolve, 30))
  }
  t.strictSame(refused, [], `and the ${kMoreBars} bars after`)
  metrics = (await getJson(`${url}/metrics`)).body
  const shadow = card('shadow')
  const serving = card('serving')
  t.ok(shadow, 'a shadow scorecard for the candidate')
  // At most kMoreBars - 2 (a bar is scored when the bar after its label bar closes); a shadow
  // answer that lands after its bar closed leaves that bar unscored for the shadow, so allow a few.
  t.ok(shadow?.lifetime.labelled_bars >= kMoreBars / 2 && shadow?.lifetime.labelled_bars <= kMoreBars - 2, `shadow labelled bars: ${shadow?.lifetime.labelled_bars}`)
  t.ok(serving?.lifetime.labelled_bars >= shadow?.lifetime.labelled_bars, 'the serving model was scored on those bars too')
  t.ok(shadow?.lifetime.hit_rate >= 0 && shadow?.lifetime.hit_rate <= 1, 'shadow hit rate is a rate')
  t.ok(metrics.shadow.rows >= kMoreBars, 'shadow scored the new rows')
})
