/**
 * Start-up with a missing, incompatible or broken model (CONTRACT.md, "Models"): the server
 * refuses with a clear, coded message, or, with require_model off, serves 503 "Model not loaded".
 * Broken model files are written into `t.testdir()` from the shipped ones at test time. The CLI's
 * exit codes are checked on a real child process.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { configFromSettings, packageRoot } from '../../src/config/load.js'
import { kSettings, kSettingKeys, type RawSettings } from '../../src/config/schema.js'
import { createLogger } from '../../src/log/logger.js'
import { PredictionServer } from '../../src/server/app.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kRoot = packageRoot()
const kModel = join(kRoot, 'models', 'xgboost_phase1_v1.onnx')
const kMetadata = JSON.parse(readFileSync(join(kRoot, 'models', 'xgboost_phase1_v1.json'), 'utf8')) as Record<string, any>

/** Starts expecting failure; a server that starts anyway is closed and fails the test. */
async function startRejects (t: Test, settings: Partial<RawSettings>): Promise<Error & { code?: string }> {
  const config = configFromSettings({ host: '127.0.0.1', port: 0, workers: 1, warmup_runs: 1, log_level: 'silent', ...settings })
  try {
    const server = await PredictionServer.start(config, createLogger('silent', null))
    t.teardown(() => server.close())
    t.fail('the server started')
    return new Error('started')
  } catch (err) {
    return err as Error & { code?: string }
  }
}

/** A model directory in the test's own folder: the shipped .onnx plus the given metadata. */
function modelDir (t: Test, metadata: unknown, onnx: Buffer | null = null): string {
  const dir = t.testdir({})
  const path = join(dir, 'candidate.onnx')
  if (onnx === null) copyFileSync(kModel, path)
  else writeFileSync(path, onnx)
  if (metadata !== undefined) writeFileSync(join(dir, 'candidate.json'), typeof metadata === 'string' ? metadata : JSON.stringify(metadata))
  return path
}

t.test('require_model with a missing model: start rejects naming the path', async (t) => {
  const missing = join(t.testdir({}), 'nowhere', 'model.onnx')
  const err = await startRejects(t, { model_path: missing, require_model: true })
  t.equal(err.code, 'ERR_MODEL_LOAD')
  t.match(err.message, missing)
})

t.test('without require_model a missing model serves 503 "Model not loaded"', async (t) => {
  const missing = join(t.testdir({}), 'model.onnx')
  const { url } = await startServer(t, { model_path: missing, require_model: false })

  const p = await postJson(`${url}/predict`, { price: 612.5 })
  t.equal(p.status, 503)
  t.same(p.body, { detail: 'Model not loaded' })

  const b = await postJson(`${url}/predict/batch`, { requests: [{ price: 612.5 }, { price: -1 }] })
  t.equal(b.status, 200)
  t.same(b.body.predictions[0], { error: 'MODEL_NOT_LOADED', status_code: 503, detail: 'Model not loaded' })
  t.equal(b.body.predictions[1].status_code, 422, 'validation still runs first')

  const invalid = await postJson(`${url}/predict`, { price: -1 })
  t.equal(invalid.status, 422, 'an invalid request is still a 422')

  const health = await getJson(`${url}/health`)
  t.equal(health.status, 503)
  t.match(health.body, { detail: 'Model not loaded', model_loaded: false, model_version: '', avg_latency_ms: Number })
  t.equal(health.body.model_error, 'ERR_MODEL_LOAD', '/health says why, as a code (no admin token: no path)')
  t.equal((await getJson(`${url}/health/ready`)).status, 503)
  t.match((await getJson(`${url}/health/live`)), { status: 200, body: { status: 'alive' } })

  const metrics = await getJson(`${url}/metrics`)
  t.equal(metrics.status, 200)
  t.equal(metrics.body.errors_by_code.ERR_MODEL_NOT_LOADED, 2, 'the single and the batch item counted')
})

t.test('metadata that does not match the feature schema: ERR_MODEL_INCOMPATIBLE', async (t) => {
  const names: string[] = kMetadata.feature_names
  const cases: Array<{ name: string, metadata: Record<string, unknown>, message: RegExp }> = [
    {
      name: 'one feature renamed',
      metadata: { ...kMetadata, feature_names: names.map((n, i) => i === 9 ? 'ma_gap_50' : n) },
      message: /feature 9 is "ma_gap_50".*"ma_gap_30"/,
    },
    {
      name: 'two features swapped',
      metadata: { ...kMetadata, feature_names: [names[1], names[0], ...names.slice(2)] },
      message: new RegExp(`feature 0 is "${names[1]}"`),
    },
    {
      name: 'a feature missing',
      metadata: { ...kMetadata, feature_names: names.slice(0, -1) },
      message: new RegExp(`expects ${names.length - 1} features`),
    },
    {
      name: 'another feature set version',
      metadata: { ...kMetadata, feature_set_version: 'bars-v0' },
      message: /"bars-v0"/,
    },
    {
      name: 'trained on another bar length',
      metadata: { ...kMetadata, bar_ms: 300_000 },
      message: /300000 ms bars/,
    },
    {
      name: 'an input name the graph does not have',
      metadata: { ...kMetadata, input_name: 'not_an_input' },
      message: /"not_an_input"/,
    },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const err = await startRejects(t, { model_path: modelDir(t, c.metadata) })
      t.equal(err.code, 'ERR_MODEL_INCOMPATIBLE', err.message)
      t.match(err.message, c.message)
    })
  }
})

t.test('the same copied model with its real metadata loads (the fixtures are sound)', async (t) => {
  const { url } = await startServer(t, { model_path: modelDir(t, kMetadata), workers: 1 })
  t.equal((await postJson(`${url}/predict`, { price: 612.5 })).status, 200)
})

t.test('a broken model file or metadata: ERR_MODEL_LOAD naming the file', async (t) => {
  const realBytes = readFileSync(kModel)
  const cases: Array<{ name: string, onnx: Buffer | null, metadata: unknown, names: 'onnx' | 'json' }> = [
    { name: 'random bytes as the .onnx', onnx: randomBytes(4096), metadata: kMetadata, names: 'onnx' },
    { name: 'an empty .onnx', onnx: Buffer.alloc(0), metadata: kMetadata, names: 'onnx' },
    { name: 'a truncated .onnx', onnx: realBytes.subarray(0, Math.floor(realBytes.length / 2)), metadata: kMetadata, names: 'onnx' },
    { name: 'metadata missing', onnx: null, metadata: undefined, names: 'json' },
    { name: 'metadata not JSON', onnx: null, metadata: '{"model_version": ', names: 'json' },
    { name: 'metadata without feature_names', onnx: null, metadata: { ...kMetadata, feature_names: undefined }, names: 'json' },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const path = modelDir(t, c.metadata, c.onnx)
      const err = await startRejects(t, { model_path: path })
      t.equal(err.code, 'ERR_MODEL_LOAD', err.message)
      t.match(err.message, c.names === 'onnx' ? path : path.replace(/\.onnx$/, '.json'))
    })
  }
})

// ---- the CLI -----------------------------------------------------------------------------------

interface Exit { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs `node --import tsx src/cli/serve.ts ...args` to its exit, killed by PID after `timeoutMs`. */
function runCli (t: Test, args: readonly string[], timeoutMs = 30_000): Promise<Exit> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  // Settings from the environment running the tests must not leak into the child's.
  for (const key of kSettingKeys) delete env[kSettings[key].env]
  delete env.CONFIG_FILE
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', ...args], { cwd: kRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let alive = true
  const killIt = (): void => { if (alive && child.pid !== undefined) { try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ } } }
  t.teardown(killIt)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { killIt(); reject(new Error(`serve.ts ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`)) }, timeoutMs)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => {
      alive = false
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

t.test('CLI: an invalid flag exits 2 naming the flag', async (t) => {
  const exit = await runCli(t, ['--workers', 'abc'])
  t.equal(exit.code, 2, exit.stderr)
  t.match(exit.stderr, '--workers (flag)')
  t.match(exit.stderr, 'abc')
})

t.test('CLI: an unreadable model exits 1 naming the path', async (t) => {
  const missing = resolve('/nonexistent.onnx')
  const exit = await runCli(t, ['--model-path', missing, '--port', '0', '--host', '127.0.0.1'])
  t.equal(exit.code, 1, exit.stderr)
  t.match(exit.stderr, 'ERR_MODEL_LOAD')
  t.match(exit.stderr, missing)
  t.notMatch(exit.stdout, '"event":"listening"', 'it never listened')
})
