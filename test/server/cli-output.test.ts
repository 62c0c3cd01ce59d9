/**
 * What the real CLI (src/cli/serve.ts, a child process on 127.0.0.1, port 0) prints: JSON lines
 * when stdout is a pipe, pretty lines when asked or on a terminal; the settings under their own
 * snake_case names with the admin token redacted everywhere (stdout, log file, /health,
 * /metrics); "did you mean" for misspelt settings; and one line, exit 1, for a failed start.
 */
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { packageRoot } from '../../src/config/load.js'
import { kSettings, kSettingKeys } from '../../src/config/schema.js'

const kRoot = packageRoot()

interface Run {
  readonly pid: number
  stdout (): string
  stderr (): string
  /** Resolves with the first stdout JSON line whose event is `event`. */
  waitForEvent (event: string, timeoutMs?: number): Promise<Record<string, any>>
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** The child's environment: ours minus every setting variable of the machine running the tests. */
function cleanEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const key of kSettingKeys) delete env[kSettings[key].env]
  delete env.CONFIG_FILE
  return { ...env, ...extra }
}

/** Spawns `node --import tsx src/cli/serve.ts ...args`; killed by PID at teardown if still running. */
function serve (t: Test, args: readonly string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', ...args],
    { cwd: kRoot, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('spawn failed')
  let alive = true
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => { alive = false; resolve({ code, signal }) })
  })
  t.teardown(() => { if (alive) { try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ } } })
  let stdout = ''
  let stderr = ''
  const waiters: Array<() => void> = []
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; for (const w of waiters) w() })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const waitForEvent = (event: string, timeoutMs = 60_000): Promise<Record<string, any>> => new Promise((resolve, reject) => {
    const check = (): void => {
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue
        const parsed = JSON.parse(line) as Record<string, any>
        if (parsed.event === event) { clearTimeout(timer); resolve(parsed); return }
      }
    }
    const timer = setTimeout(() => { reject(new Error(`no "${event}" line within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`)) }, timeoutMs)
    waiters.push(check)
    void exited.then(() => { check(); clearTimeout(timer); reject(new Error(`exited before "${event}"; stdout: ${stdout}; stderr: ${stderr}`)) })
    check()
  })
  return { pid, stdout: () => stdout, stderr: () => stderr, waitForEvent, exited }
}

/** Every non-empty line of `text` (the pretty stream on a pty ends lines with \r\n). */
function lines (text: string): string[] {
  return text.split(/\r?\n/).filter((l) => l !== '')
}

function jsonLines (text: string): Array<Record<string, any>> {
  return lines(text).map((l) => JSON.parse(l) as Record<string, any>)
}

async function fetchText (url: string, init: RequestInit = {}): Promise<{ status: number, text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
  return { status: res.status, text: await res.text() }
}

const kServeArgs = ['--host', '127.0.0.1', '--port', '0', '--workers', '1', '--warmup-runs', '1']

t.test('the admin token is printed nowhere (stdout, log file, /health, /metrics); settings print snake_case; a taken port is one line', async (t) => {
  // Random, so that a match can only be the token itself.
  const token = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`
  const logFile = join(t.testdir({}), 'service.log')
  const run = serve(t, [...kServeArgs, '--log-file', logFile], { ADMIN_TOKEN: token })

  const listening = await run.waitForEvent('listening')
  const base = `http://127.0.0.1:${listening.port as number}`
  const starting = jsonLines(run.stdout())[0]!
  t.equal(starting.event, 'starting', 'stdout is a pipe: JSON lines')
  t.strictSame(Object.keys(starting.settings), [...kSettingKeys], 'the settings\' own snake_case names, all of them, in order')
  t.equal(starting.settings.admin_token, '[redacted]')
  t.equal(starting.settings.log_format, 'auto')

  const admin = await fetchText(`${base}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(admin.status, 200, `the token is in effect (${admin.text})`)
  const wrong = await fetchText(`${base}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}x` } })
  t.equal(wrong.status, 401)
  for (const path of ['/health', '/health/ready', '/health/live', '/metrics', '/metrics/prometheus']) {
    const r = await fetchText(`${base}${path}`)
    t.equal(r.status, 200, path)
    t.notMatch(r.text, token, `${path} does not show the token`)
  }

  // While it runs, its port is taken: a second server fails to start with one line (and loads
  // the model first, so its start-up is the full one up to the listen).
  const port = listening.port as number
  const second = serve(t, [...kServeArgs.slice(0, 2), '--port', String(port), ...kServeArgs.slice(4)])
  t.equal((await second.exited).code, 1, 'a taken port: exit 1')
  t.strictSame(lines(second.stderr()), [`Start-up failed: could not listen on 127.0.0.1:${port} (in use, or not an address of this machine)`])
  t.strictSame(jsonLines(second.stdout()).map((l) => l.event), ['starting', 'model_loaded', 'startup_failed'], 'no listen_failed, no shutdown lines')
  t.notMatch(second.stdout(), '"stack"')

  process.kill(run.pid, 'SIGTERM')
  const exit = await run.exited
  t.equal(exit.code, 0, run.stderr())
  const file = readFileSync(logFile, 'utf8')
  t.ok(jsonLines(file).some((l) => l.event === 'listening'), 'the log file was written')
  for (const [name, text] of [['stdout', run.stdout()], ['stderr', run.stderr()], ['log file', file]] as const) {
    t.notMatch(text, token, `${name} does not show the token`)
  }
})

t.test('a missing model or a bad model_path: one plain line on stderr, one fatal record, exit 1', async (t) => {
  const dir = t.testdir({ sub: {} })
  const cases = [
    { name: 'missing', path: join(dir, 'nowhere', 'model.onnx'), says: 'model not found at' },
    { name: 'a directory', path: join(dir, 'sub'), says: 'is not a regular file (a directory):' },
  ]
  for (const c of cases) {
    const run = serve(t, [...kServeArgs, '--model-path', c.path])
    const exit = await run.exited
    t.equal(exit.code, 1, `${c.name}: exit 1`)
    const err = lines(run.stderr())
    t.equal(err.length, 1, `${c.name}: one line on stderr: ${run.stderr()}`)
    t.match(err[0], `Start-up failed: ERR_MODEL_LOAD: model`)
    t.match(err[0], `${c.path}`)
    t.match(err[0], c.says)
    t.match(err[0], 'set model_path (MODEL_PATH, --model-path)', 'says what to do')
    t.match(err[0], 'require_model=false', 'and the way to start without a model')
    const out = jsonLines(run.stdout())
    t.strictSame(out.map((l) => l.event), ['starting', 'startup_failed'], `${c.name}: no other line (no model_load_failed, no shutdown lines)`)
    t.match(out[1], { level: 60, code: 'ERR_MODEL_LOAD', msg: `Start-up failed: ${err[0]!.slice('Start-up failed: ERR_MODEL_LOAD: '.length)}` })
    t.notMatch(run.stdout() + run.stderr(), /stack|statusCode|wireCode|\n\s+at /, `${c.name}: no stack trace, no HTTP mapping`)
  }
})

t.test('LOG_FORMAT=pretty: human lines on stdout, nothing on stderr; env slips are warned about', async (t) => {
  const missing = join(t.testdir({}), 'model.onnx')
  const run = serve(t, [...kServeArgs, '--model-path', missing], { LOG_FORMAT: 'pretty', WOKERS: '2' })
  const exit = await run.exited
  t.equal(exit.code, 1)
  t.equal(run.stderr(), '', 'the fatal line on stdout is the one line')
  const out = lines(run.stdout())
  t.equal(out.length, 3, run.stdout())
  t.match(out[0], /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Starting ML prediction service: host=127\.0\.0\.1 port=0 model_path=\S+ require_model=true workers=1 /)
  t.match(out[0], ' log_format=pretty ')
  t.match(out[0], ' admin_token=null ')
  t.match(out[1], /^\[[\d:.]+\] WARN: WOKERS \(env\) is not a variable this server reads \(did you mean WORKERS\?\)$/)
  t.match(out[2], /^\[[\d:.]+\] FATAL: Start-up failed: model not found at /)
  t.match(out[2], missing)
  for (const line of out) {
    t.throws(() => JSON.parse(line), 'not JSON')
    // eslint-disable-next-line no-control-regex
    t.notMatch(line, /\u001b\[/, 'no colour codes into a pipe')
  }
})

// `script` (util-linux) gives the child a pseudo-terminal as stdout; without it there is no
// portable way to get one from node.
const kNoScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0

t.test('log_format auto on a terminal is pretty and coloured', { skip: kNoScript ? 'no `script` command to provide a terminal' : false }, async (t) => {
  const missing = join(t.testdir({}), 'model.onnx')
  const command = [process.execPath, '--import', 'tsx', 'src/cli/serve.ts', ...kServeArgs, '--model-path', missing]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  // The test runner may set NO_COLOR for its own output; the child must decide for itself.
  const env = cleanEnv({})
  delete env.NO_COLOR
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: kRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.pid !== undefined) { try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ } } })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { output += s })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  t.equal(code, 1, output)
  const out = lines(output)
  t.equal(out.length, 2, output)
  t.match(out[0], 'Starting ML prediction service: host=127.0.0.1')
  t.match(out[0], ' log_format=auto ')
  // eslint-disable-next-line no-control-regex
  t.match(out[0], /\u001b\[3\dmINFO/, 'coloured level')
  t.match(out[1], 'FATAL')
  t.match(out[1], 'Start-up failed: model not found at')
  t.throws(() => JSON.parse(out[0]!), 'not JSON')
})

t.test('misspelt settings in a config file and in flags: exit 2 with "did you mean"', async (t) => {
  const dir = t.testdir({ 'service.json': JSON.stringify({ wokers: 2, maxBatchSize: 8 }) })
  const run = serve(t, ['--config', join(dir, 'service.json'), '--max-bach-size', '8', '--prot', '0'])
  const exit = await run.exited
  t.equal(exit.code, 2)
  const file = join(dir, 'service.json')
  t.equal(run.stderr(), [
    'Invalid configuration:',
    `  - wokers (${file}) is not a known setting (did you mean "workers"?)`,
    `  - maxBatchSize (${file}) is not a known setting (did you mean "max_batch_size"?)`,
    '  - --max-bach-size (flag) is not a known flag (did you mean --max-batch-size?)',
    '  - --prot (flag) is not a known flag (did you mean --port?)',
    '',
  ].join('\n'))
  t.equal(run.stdout(), '', 'nothing started, nothing logged')
})
