/**
 * The real Rust client (examples/rust-bot: the integration guide's MLClient with strict serde
 * types) built with cargo and run against the real server in each state the bot meets: fresh,
 * after predictions, during a model reload, in the shutdown grace period and the drain, with no
 * model; and its fallback paths against a closed port, a 503, and a server that never answers.
 *
 * The build is offline, from Debian's packaged crates (examples/rust-bot/.cargo/config.toml);
 * without cargo or those crates the file is skipped with the reason (CI installs them: .ci/run).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { InferenceGate } from '../helpers/inference-gate.js'
import { writeModel } from '../helpers/model-fixtures.js'
import { postJson, startServer } from '../helpers/start-server.js'
import { admin, kAdminToken, until } from './bot-helpers.js'

const kCrate = new URL('../../examples/rust-bot/', import.meta.url).pathname
const kBinary = join(kCrate, 'target', 'debug', 'rust-bot')
const kDebianRegistry = '/usr/share/cargo/registry'
const kDebianCrates = ['reqwest-0.11', 'tokio-1.', 'serde_json-1.', 'serde_derive-1.']
// The guide's prediction budget.
const kTimeoutMs = 100
// Generous bound for "fails fast": the budget plus process-free slack on a loaded CI machine.
const kFastMs = 1000

function whyNoRust (): string | null {
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) return 'cargo is not installed'
  const present = existsSync(kDebianRegistry) ? readdirSync(kDebianRegistry) : []
  const missing = kDebianCrates.filter(prefix => !present.some(name => name.startsWith(prefix)))
  if (missing.length > 0) {
    return `Debian's Rust crates are missing from ${kDebianRegistry} (${missing.join(', ')}): apt-get install librust-reqwest-dev librust-tokio-dev librust-serde-json-dev librust-serde-derive-dev`
  }
  return null
}

interface Run { code: number | null, lines: any[], stderr: string }

/** Runs the bot once to completion (30 s at most). */
function runBot (args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(kBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      const lines = stdout.split('\n').filter(l => l.length > 0).map(l => JSON.parse(l))
      resolve({ code, lines, stderr })
    })
  })
}

/**
 * The bot in `repl` mode: one MLClient (one keep-alive connection) that the test steps through
 * server states, one command at a time.
 */
class BotRepl {
  private readonly child: ChildProcessWithoutNullStreams
  private readonly pending: Array<(line: any) => void> = []
  private readonly exited: Promise<number | null>
  stderr = ''

  constructor (t: Test, url: string, timeoutMs: number) {
    this.child = spawn(kBinary, ['repl', url, '--timeout-ms', String(timeoutMs)])
    this.child.stderr.on('data', (c: Buffer) => { this.stderr += c.toString() })
    createInterface({ input: this.child.stdout }).on('line', (line) => { this.pending.shift()?.(JSON.parse(line)) })
    this.exited = new Promise(resolve => this.child.on('close', resolve))
    t.teardown(() => { if (this.child.exitCode === null) this.child.kill('SIGKILL') })
  }

  /** Sends one command; resolves with its JSON line (rejects after 15 s). */
  ask (command: 'health' | 'predict' | 'fallback'): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`bot gave no answer to ${command} in 15 s`)) }, 15_000)
      this.pending.push((line) => { clearTimeout(timer); resolve(line) })
      this.child.stdin.write(`${command}\n`)
    })
  }

  /** Ends the session: exit code 0 when every answer decoded, 2 when one did not. */
  async quit (): Promise<number | null> {
    this.child.stdin.end('quit\n')
    return this.exited
  }
}

/** A listener closed again: connecting to its port is refused. */
async function closedPort (): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

/** A TCP server on 127.0.0.1 that accepts and then does `onSocket` (closed at teardown). */
async function rawServer (t: Test, onSocket: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>()
  const server: Server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => { /* the bot hangs up on its deadline */ })
    onSocket(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => { resolve() })
  }))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

function predictionLine (t: Test, line: any, what: string): void {
  t.equal(line.kind, 'prediction', `${what}: the bot decoded a prediction (${JSON.stringify(line)})`)
}

const skip = whyNoRust()
if (skip !== null) {
  t.pass('skipped: the Rust bot cannot be built here', { skip })
} else {
  // A cold build of the crate and its dependencies takes minutes on a loaded 2-core machine.
  t.setTimeout(15 * 60_000)

  t.test('the crate builds offline from the Debian crates', async (t) => {
    const started = performance.now()
    const build = spawnSync('cargo', ['build', '--offline', '--quiet'], { cwd: kCrate, encoding: 'utf8', timeout: 14 * 60_000 })
    t.equal(build.status, 0, `cargo build (${((performance.now() - started) / 1000).toFixed(1)} s)${build.status === 0 ? '' : `:\n${build.stderr}`}`)
    t.ok(existsSync(kBinary), 'the binary exists')
    if (build.status !== 0) t.bailout('the Rust bot did not build')
  })

  t.test('a fresh server: the bot starts (health decodes), its predictions decode, then avg latency moves', async (t) => {
    const { url } = await startServer(t)
    // 5 s budget here: the subject is decoding; the 100 ms budget is tested with the fallbacks.
    const first = await runBot(['check', url, '--predictions', '4', '--timeout-ms', '5000'])
    t.equal(first.code, 0, `exit 0 (stderr: ${first.stderr})`)
    t.match(first.lines[0], { kind: 'health', status: 200, health: { status: 'ok', model_loaded: true, model_version: 'xgboost_phase1_v2_calibrated', avg_latency_ms: 0 } })
    t.match(first.stderr, /INFO {2}ML service healthy - model: xgboost_phase1_v2_calibrated, uptime: \d+s, avg latency: 0\.0ms/, 'the guide\'s start-up line')
    t.equal(first.lines.length, 5)
    first.lines.slice(1).forEach((line, i) => { predictionLine(t, line, `prediction ${i}`) })
    t.match(first.lines[1].prediction, { model_version: 'xgboost_phase1_v2_calibrated', symbol: 'WBNBUSDT' })
    t.equal(first.lines[4].prediction.symbol, 'WBNBUSDT', 'no symbol sent: the default symbol answers')

    const second = await runBot(['check', url, '--predictions', '1', '--timeout-ms', '5000'])
    t.equal(second.code, 0)
    t.ok(second.lines[0].health.avg_latency_ms > 0, `after predictions avg_latency_ms ${second.lines[0].health.avg_latency_ms as number} > 0`)
    t.ok(second.lines[0].health.uptime_seconds > 0)
  })

  t.test('a model set serves: the bot starts and decodes its answers unchanged (it ignores components)', async (t) => {
    const { url } = await startServer(t, { model_path: 'models/ensemble_phase2_v1.set.json' })
    const run = await runBot(['check', url, '--predictions', '3', '--timeout-ms', '5000'])
    t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr})`)
    t.match(run.lines[0], { kind: 'health', status: 200, health: { status: 'ok', model_loaded: true, model_version: 'ensemble_phase2_v1' } })
    run.lines.slice(1).forEach((line, i) => { predictionLine(t, line, `prediction ${i}`) })
    t.match(run.lines[1].prediction, { model_version: 'ensemble_phase2_v1' })
  })

  t.test('during a model reload: the bot\'s calls decode from either version, then the new one', async (t) => {
    const dir = t.testdir()
    const v1 = writeModel(dir, 'model', { model_version: 'bot_v1' })
    writeModel(dir, 'candidate', { model_version: 'bot_v2' })
    writeModel(dir, 'broken', { model_version: 'bot_broken' }, Buffer.from('not an onnx file'))
    const { url } = await startServer(t, { model_path: v1, admin_token: kAdminToken })
    const bot = new BotRepl(t, url, 5000)
    t.match(await bot.ask('health'), { kind: 'health', health: { model_version: 'bot_v1' } })
    t.match(await bot.ask('predict'), { kind: 'prediction', prediction: { model_version: 'bot_v1' } })

    let reloaded = false
    const reload = admin(url, 'reload', { model_path: 'candidate.onnx' }).finally(() => { reloaded = true })
    const during: any[] = []
    const deadline = Date.now() + 60_000
    while (!reloaded && Date.now() < deadline) {
      during.push(await bot.ask('health'), await bot.ask('predict'))
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    t.equal((await reload).status, 200, 'reload answered 200')
    t.ok(during.length >= 2, `${during.length} bot calls while the reload ran`)
    t.same(during.filter(l => l.kind !== 'health' && l.kind !== 'prediction'), [], 'every one decoded')
    t.match(await bot.ask('predict'), { kind: 'prediction', prediction: { model_version: 'bot_v2' } }, 'v2 serves after the reload')
    t.match(await bot.ask('health'), { kind: 'health', health: { model_version: 'bot_v2' } })

    t.equal((await admin(url, 'reload', { model_path: 'broken.onnx' })).status, 422, 'a broken model is refused')
    t.match(await bot.ask('health'), { kind: 'health', health: { status: 'ok', model_version: 'bot_v2' } }, 'health still decodes (model_error added)')
    t.match(await bot.ask('predict'), { kind: 'prediction', prediction: { model_version: 'bot_v2' } })
    t.equal(await bot.quit(), 0, 'no decode failure in the session')
  })

  t.test('shutdown: the grace period still serves the bot; in the drain its connection is refused and it falls back', async (t) => {
    const { url, server } = await startServer(t, { shutdown_grace_ms: 4000 })
    const bot = new BotRepl(t, url, 5000)
    predictionLine(t, await bot.ask('predict'), 'before the shutdown')
    const closing = server.close('SIGTERM')
    // Draining answers carry Connection: close (README, Draining): each of these reconnects.
    t.match(await bot.ask('health'), { kind: 'health', status: 200, health: { status: 'draining' } }, 'grace: the bot\'s health check passes')
    predictionLine(t, await bot.ask('predict'), 'grace')

    // One admitted request held at the worker keeps the drain going until the gate opens.
    const gate = new InferenceGate(server.service.currentModel!)
    const held = postJson(`${url}/predict`, { price: 612.5 })
    t.ok(await until(() => server.service.isShuttingDown, 30_000), 'the drain started')
    // The listener is closed and the bot holds no open connection: refused, then the fallback.
    t.match(await bot.ask('predict'), { kind: 'error', class: 'connect' }, 'drain: the prediction fails to connect (nothing to decode)')
    const after = await bot.ask('fallback')
    t.equal(after.prediction, null, 'then the fallback: None')
    t.ok(after.elapsed_ms < kFastMs, `quickly (${after.elapsed_ms as number} ms)`)
    gate.open()
    t.equal((await held).status, 200, 'the admitted request was answered')
    await closing
    t.match(bot.stderr, /WARN {2}ML prediction failed \(fallback mode\): (connection refused|request failed: .+)/)
    t.equal(await bot.quit(), 0, 'no decode failure in the session')
  })

  t.test('no model: the bot refuses to start with the 503 detail, and the 503 body decodes', async (t) => {
    const { url } = await startServer(t, { model_path: join(t.testdir({}), 'missing.onnx'), require_model: false })
    const check = await runBot(['check', url])
    t.equal(check.code, 1, 'exit 1: the start-up health check failed (not 2: everything decoded)')
    t.match(check.lines[0], {
      kind: 'error', op: 'health', class: 'status', status: 503, message: 'ML service returned 503: Model not loaded',
      body: { status: 503, health: { status: 'unavailable', model_loaded: false, model_version: '' } },
    })
    t.match(check.stderr, 'ERROR ML service health check failed: ML service returned 503: Model not loaded')
    const predict = await runBot(['predict', url, '--predictions', '2'])
    t.equal(predict.code, 0)
    t.same(predict.lines.map(l => [l.class, l.status, l.message]), Array(2).fill(['status', 503, 'ML service returned 503: Model not loaded']))
    const fallback = await runBot(['fallback', url])
    t.equal(fallback.lines[0].prediction, null, 'predict_with_fallback: None')
    t.match(fallback.stderr, 'WARN  ML prediction failed (fallback mode): ML service returned 503: Model not loaded')
  })

  t.test('fallback: a closed port gives None at once', async (t) => {
    const r = await runBot(['fallback', `http://127.0.0.1:${await closedPort()}`])
    t.equal(r.code, 0)
    t.equal(r.lines[0].prediction, null)
    t.ok(r.lines[0].elapsed_ms < kFastMs, `${r.lines[0].elapsed_ms as number} ms`)
    t.match(r.stderr, 'WARN  ML prediction failed (fallback mode): connection refused')
  })

  t.test('fallback: a 503 that is not JSON (a proxy page) gives None with the body in the log', async (t) => {
    const server = createHttpServer((_req, res) => { res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>') })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
    const r = await runBot(['fallback', `http://127.0.0.1:${(server.address() as { port: number }).port}`])
    t.equal(r.lines[0].prediction, null)
    t.match(r.stderr, 'ML service returned 503: <h1>Service Unavailable</h1>')
  })

  t.test('fallback: a server that accepts and never answers gives None on the 100 ms deadline', async (t) => {
    const url = await rawServer(t, () => { /* read nothing, answer nothing */ })
    const r = await runBot(['fallback', url, '--timeout-ms', String(kTimeoutMs)])
    t.equal(r.lines[0].prediction, null)
    const ms = r.lines[0].elapsed_ms as number
    t.ok(ms >= kTimeoutMs && ms < kFastMs, `${ms.toFixed(1)} ms: not before the deadline, not long after`)
    t.match(r.stderr, `WARN  ML prediction failed (fallback mode): timeout after ${kTimeoutMs}ms`)
  })

  t.test('fallback: a server that sends the head and stalls the body also ends on the deadline', async (t) => {
    const url = await rawServer(t, (socket) => {
      socket.once('data', () => { socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"direction":') })
    })
    const r = await runBot(['fallback', url, '--timeout-ms', String(kTimeoutMs)])
    t.equal(r.lines[0].prediction, null)
    const ms = r.lines[0].elapsed_ms as number
    t.ok(ms >= kTimeoutMs && ms < kFastMs, `${ms.toFixed(1)} ms`)
    t.match(r.stderr, `timeout after ${kTimeoutMs}ms`)
  })
}
