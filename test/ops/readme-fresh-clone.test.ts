/**
 * The README's first steps, as a newcomer follows them, on a fresh clone: `git clone` of the
 * committed HEAD into a temporary directory, then the quick start's `npm start` (build + serve)
 * and every command of the "Try it" block, extracted from README.md and run as written with bash
 * (including `npm run example`). Only the PORT differs: the server and the commands get an
 * ephemeral one through the PORT variable the README's commands honour, and HOST=127.0.0.1 keeps
 * the traffic on loopback.
 *
 * Not replayed: `npm ci` (node_modules is linked in from this checkout to keep the test fast; a
 * real install from the lock file is what CI's `.ci/run` does on its fresh clone) and `npm test`
 * (the whole suite, this file included). Uncommitted changes are not in the clone: commit first.
 * Takes ~30-90 s (a full `tsc` build in the clone). Needs git, curl and jq; skips without them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { findBinary, freePort, kRepoRoot, waitFor } from './ops-helpers.js'

t.setTimeout(300_000)

const kReadme = readFileSync(join(kRepoRoot, 'README.md'), 'utf8')
const kStartTimeoutMs = 180_000
const kCommandTimeoutMs = 60_000

/** The commands of the first ```sh block after `from` in the README: continuations joined, comments and blanks dropped. */
export function shellBlock (text: string, from: string): string[] {
  const at = text.indexOf(from)
  if (at < 0) throw new Error(`README has no ${JSON.stringify(from)}`)
  const m = /```sh\n([\s\S]*?)```/.exec(text.slice(at))
  if (m === null) throw new Error(`no \`\`\`sh block after ${JSON.stringify(from)}`)
  const commands: string[] = []
  let pending = ''
  for (const line of m[1]!.split('\n')) {
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue
    if (line.endsWith('\\')) { pending += `${line.slice(0, -1)} `; continue }
    commands.push(pending + line)
    pending = ''
  }
  return commands
}

function run (cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`)
  return r.stdout.trim()
}

t.test('README quick start and "Try it" on a fresh clone', async (t) => {
  const missing = ['git', 'curl', 'jq', 'bash'].filter((b) => findBinary(b) === null)
  if (missing.length > 0) {
    t.pass(`not run: ${missing.join(', ')} not installed`, { skip: true })
    return
  }
  const head = run('git', ['rev-parse', 'HEAD'], kRepoRoot)
  if (run('git', ['status', '--porcelain', '--untracked-files=no'], kRepoRoot) !== '') {
    t.comment('the working tree has uncommitted changes: this test runs the committed HEAD only')
  }
  const dir = mkdtempSync(join(tmpdir(), 'readme-clone-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const clone = join(dir, 'ml-prediction-server')
  run('git', ['clone', '--quiet', '--no-checkout', kRepoRoot, clone], dir)
  run('git', ['checkout', '--quiet', head], clone)
  t.equal(run('git', ['rev-parse', 'HEAD'], clone), head, `clone at ${head.slice(0, 12)}`)
  t.notOk(existsSync(join(clone, 'dist')), 'nothing built in the clone')
  symlinkSync(realpathSync(join(kRepoRoot, 'node_modules')), join(clone, 'node_modules'))

  const quick = shellBlock(kReadme, '# ml-prediction-server')
  t.match(quick[0], /^npm ci && npm start\b/, 'the quick start is `npm ci && npm start`')
  const start = quick[0]!.replace(/^npm ci && /, '')

  const port = await freePort()
  const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_FILE: '' }
  // Its own process group, so npm, the shell and node all stop on one signal to the group this
  // test created (by its PID); npm does not always pass a signal on to the server.
  const server: ChildProcess = spawn('bash', ['-c', start], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  server.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  server.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>((resolve) => { server.once('exit', () => { resolve() }) })
  t.teardown(async () => {
    if (server.exitCode !== null || server.signalCode !== null) return
    try { process.kill(-server.pid!, 'SIGTERM') } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-server.pid!, 'SIGKILL') } catch { /* gone */ } }, 15_000)
    await exited
    clearTimeout(timer)
  })
  const started = Date.now()
  await waitFor(`\`${start}\` ready on port ${port}`, kStartTimeoutMs, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) })
    return res.status === 200 ? true : null
  }, () => (server.exitCode !== null ? `exited ${server.exitCode}: ${output.slice(-2000)}` : null), 500)
  t.pass(`\`${start}\` built and served in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  t.ok(existsSync(join(clone, 'dist/src/cli/serve.js')), 'npm start built dist/ (prestart)')

  const tryIt = shellBlock(kReadme, '## Try it')
  t.ok(tryIt.length >= 5, `${tryIt.length} commands in "Try it"`)
  // What each command must print; a command missing here fails, so a new README command gets a check.
  const expected: Array<[RegExp, RegExp]> = [
    [/\/health"?$/, /"status":"ok".*"model_loaded":true/],
    [/\/predict"? /, /"direction":"(LONG|SHORT)".*"model_version":"xgboost_phase1_v2_calibrated"/],
    [/jq \.latency_ms$/, /"p50"/],
    [/\/metrics\/prometheus"?$/, /^ml_prediction_latency_ms_bucket/m],
    [/^npm run example\b/, /ML service healthy: model xgboost_phase1_v2_calibrated[\s\S]*120 ticks: .* 0 in fallback mode/],
  ]
  for (const command of tryIt) {
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd: clone, env, encoding: 'utf8', timeout: kCommandTimeoutMs })
    t.equal(r.status, 0, `exit 0: ${command}`, { stderr: r.stderr.slice(-2000), stdout: r.stdout.slice(-2000) })
    const check = expected.find(([cmd]) => cmd.test(command.replace(/\s+#.*$/, '')))
    if (check === undefined) t.fail(`no expected output known for README command: ${command}`)
    else t.match(r.stdout, check[1], `output of: ${command}`)
  }
  t.equal(server.exitCode, null, 'the server is still running')
})
