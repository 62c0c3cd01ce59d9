import { spawn } from 'node:child_process'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { kShippedMeta, writeModel } from '../helpers/model-fixtures.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kToken = 'test-token-0123456789'

async function admin (url: string, path: string, body: unknown, token: string | null = kToken, method = 'POST'): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  const text = await res.text()
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null }
}

interface Answer { status: number, version: string | null, ms: number, loop: number }

/** Resolves once `condition` holds (checked every 10 ms), or after `maxMs` (the caller asserts). */
async function until (condition: () => boolean, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs
  while (!condition() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
}

/**
 * Sequential request loops recording every answer, until `stop()` is called (and then one more
 * second, and until every loop has had `perLoopAfterStop` more answers), never longer than
 * `maxMs`: the rollout steps take as long as the machine needs.
 */
function steadyLoad (url: string, loops: number, maxMs: number, perLoopAfterStop = 5): { answers: Answer[], stop: () => void, done: Promise<Answer[]> } {
  const answers: Answer[] = []
  const hardStop = Date.now() + maxMs
  let stopAt = Infinity
  let stopped = false
  const countAtStop: number[] = new Array<number>(loops).fill(0)
  const count: number[] = new Array<number>(loops).fill(0)
  const stop = (): void => {
    stopped = true
    stopAt = Date.now() + 1000
    count.forEach((n, loop) => { countAtStop[loop] = n })
  }
  const running = (loop: number): boolean =>
    Date.now() < hardStop && (!stopped || Date.now() < stopAt || count[loop]! - countAtStop[loop]! < perLoopAfterStop)
  const done = Promise.all(Array.from({ length: loops }, async (_, loop) => {
    let i = 0
    while (running(loop)) {
      const started = performance.now()
      let status = 0
      let version: string | null = null
      try {
        const r = await postJson(`${url}/predict`, { price: 600 + (i++ % 50), volume: 10, symbol: `L${loop}` })
        status = r.status
        version = r.body?.model_version ?? null
      } catch { status = -1 }
      answers.push({ status, version, ms: performance.now() - started, loop })
      count[loop]!++
    }
  })).then(() => answers)
  return { answers, stop, done }
}

t.test('a new model version goes into service under steady load without a failed or stalled request', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'rollout_v1' })
  writeModel(dir, 'candidate', { model_version: 'rollout_v2' })
  writeModel(dir, 'broken', { model_version: 'rollout_broken' }, Buffer.from('this is not an onnx file'))
  writeModel(dir, 'mismatch', { model_version: 'rollout_mismatch', feature_names: [...(kShippedMeta.feature_names as string[])].reverse() })
  const { url, server } = await startServer(t, { model_path: v1, admin_token: kToken, workers: 2 })

  // Every loop goes on for a second after stop() and 15 answers more: over 100 answers in all.
  const load = steadyLoad(url, 6, 60_000, 15)
  // At least a second of v1 traffic, and v1 answers on every loop before the swap (a condition,
  // not a sleep: a loaded machine may need longer to get there).
  const loadStarted = Date.now()
  const v1OnEveryLoop = (): boolean => [0, 1, 2, 3, 4, 5].every(loop => load.answers.filter(a => a.loop === loop && a.version === 'rollout_v1').length >= 5)
  await until(() => Date.now() - loadStarted >= 1000 && v1OnEveryLoop(), 30_000)
  t.ok(v1OnEveryLoop(), 'every loop was served by v1 before the swap')
  const swap = await admin(url, '/admin/reload', { model_path: 'candidate.onnx' })
  t.equal(swap.status, 200, 'reload answered 200')
  t.match(swap.body, { model_version: 'rollout_v2', previous_version: 'rollout_v1' })

  await new Promise(resolve => setTimeout(resolve, 500))
  const broken = await admin(url, '/admin/reload', { model_path: 'broken.onnx' })
  t.equal(broken.status, 422, 'a corrupt model is refused')
  t.match(broken.body, { code: 'ERR_MODEL_LOAD', model_version: 'rollout_v2' })
  const health = await getJson(`${url}/health`)
  t.equal(health.body.model_version, 'rollout_v2', 'the previous model keeps serving')
  t.equal(health.body.model_error, 'ERR_MODEL_LOAD', '/health says why the reload failed, as a code')
  const detailed = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${kToken}` }, signal: AbortSignal.timeout(10_000) }).then(async r => await r.json() as Record<string, unknown>)
  t.match(detailed.model_error_detail, /broken\.onnx/, 'and, with the admin token, the message')

  const mismatch = await admin(url, '/admin/reload', { model_path: 'mismatch.onnx' })
  t.equal(mismatch.status, 422)
  t.match(mismatch.body, { code: 'ERR_MODEL_INCOMPATIBLE', model_version: 'rollout_v2' })
  t.match(mismatch.body.detail, /feature 0/, 'the message names the mismatching feature')

  load.stop()
  const answers = await load.done
  t.ok(answers.length > 100, `${answers.length} requests during the rollout`)
  const failed = answers.filter(a => a.status !== 200)
  t.equal(failed.length, 0, 'no request failed across the reloads')
  const times = answers.map(a => a.ms).sort((a, b) => a - b)
  const slowest = times[times.length - 1]!
  const median = times[Math.floor(times.length / 2)]!
  // A stall is a request held for seconds while a model loads. 2 s is ~25x the slowest request on
  // an idle 2-core machine; on a machine so loaded that a typical request takes over 40 ms, the
  // bound scales with it (50x the median) instead of failing on the machine's own slowness.
  const stallMs = Math.max(2000, 50 * median)
  t.ok(slowest < stallMs, `no request stalled (slowest ${slowest.toFixed(1)} ms, median ${median.toFixed(1)} ms, bound ${stallMs.toFixed(0)} ms)`)
  t.ok(answers.some(a => a.version === 'rollout_v1') && answers.some(a => a.version === 'rollout_v2'), 'answers came from both versions')
  for (let loop = 0; loop < 6; loop++) {
    const versions = answers.filter(a => a.loop === loop).map(a => a.version)
    const firstV2 = versions.indexOf('rollout_v2')
    t.ok(firstV2 >= 0 && versions.slice(firstV2).every(v => v === 'rollout_v2'), `loop ${loop}: once v2 answered, v1 never did again`)
  }
  t.same(new Set(answers.map(a => a.version)), new Set(['rollout_v1', 'rollout_v2']), 'broken and mismatched versions never answered')
  t.equal(server.models.reloadsOk, 2, 'start-up and the swap')
  t.equal(server.models.reloadsFailed, 2)
})

t.test('admin routes need the token, stay inside the models folder, and are off without a token', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'auth_v1' })
  const { url } = await startServer(t, { model_path: v1, admin_token: kToken, workers: 1 })
  t.equal((await admin(url, '/admin/reload', {}, null)).status, 401, 'no token')
  t.equal((await admin(url, '/admin/reload', {}, 'wrong-token-0123456789')).status, 401, 'wrong token')
  t.equal((await admin(url, '/admin/reload', {}, kToken.slice(0, -1))).status, 401, 'prefix of the token')
  const escape = await admin(url, '/admin/reload', { model_path: '../../../etc/passwd' })
  t.equal(escape.status, 422)
  t.match(escape.body.detail, /models folder/)
  t.equal((await admin(url, '/admin/reload', { model_path: 42 })).status, 422, 'model_path must be a string')
  const same = await admin(url, '/admin/reload', undefined)
  t.equal(same.status, 200, 'an empty body reloads the serving file')
  t.equal(same.body.model_version, 'auth_v1')

  const off = await startServer(t, { model_path: v1, workers: 1 })
  t.equal((await admin(off.url, '/admin/reload', {})).status, 404, 'no admin_token: the routes do not exist')
})

t.test('shadow mode scores a candidate on live traffic and reports agreement without changing answers', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'serving_v1' })
  writeModel(dir, 'candidate', { model_version: 'candidate_v2' })
  const { url } = await startServer(t, { model_path: v1, admin_token: kToken, workers: 1 })
  const started = await admin(url, '/admin/shadow', { model_path: 'candidate.onnx' })
  t.equal(started.status, 200)
  t.equal(started.body.model_version, 'candidate_v2')
  for (let i = 0; i < 40; i++) {
    const r = await postJson(`${url}/predict`, { price: 600 + i, volume: 5 + i, symbol: `S${i % 4}` })
    t.equal(r.body.model_version, 'serving_v1', 'answers still come from the serving model')
  }
  // The candidate answers asynchronously; wait (bounded by time, generously: a loaded machine
  // may be slow to finish its batches) for its comparisons.
  let shadow: any = null
  const waitUntil = Date.now() + 30_000
  for (;;) {
    shadow = (await getJson(`${url}/metrics`)).body.shadow
    if ((shadow !== null && shadow.rows + shadow.skipped_rows >= 40) || Date.now() > waitUntil) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  // Sequential requests keep the candidate a batch or two behind, well inside its window; but a
  // candidate thread starved of CPU for ~30 requests is sampled, by design (that sampling is tested
  // deterministically in test/model/shadow-window.test.ts). Here: every row accounted for, and the
  // ones compared agree exactly (the candidate is the same model).
  t.match(shadow, { model_version: 'candidate_v2', direction_agreement: 1, mean_abs_diff: 0 })
  t.equal(shadow.rows + shadow.skipped_rows, 40, 'every row was compared or counted as skipped')
  t.ok(shadow.rows > 0, `rows compared: ${shadow.rows as number}`)
  const prom = await (await fetch(`${url}/metrics/prometheus`)).text()
  t.match(prom, /ml_shadow_direction_agreement_ratio\{model_version="candidate_v2"\} 1/)
  t.match((await getJson(`${url}/health`)).body.shadow, { model_version: 'candidate_v2' })
  t.equal((await admin(url, '/admin/shadow', undefined, kToken, 'DELETE')).status, 200)
  t.equal((await getJson(`${url}/metrics`)).body.shadow, null, 'shadow stopped')
})

async function startChild (t: Test, args: string[]): Promise<{ url: string, pid: number, exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', '--host', '127.0.0.1', '--port', '0', '--workers', '1', '--warmup-runs', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('server did not start in 60 s')) }, 60_000)
    let buf = ''
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString()
      const m = /"event":"listening".*?"port":(\d+)/.exec(buf)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
  })
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, exited }
}

/** Polls /health until `version` serves; 30 s at most (a reload on a loaded machine is slow). */
async function waitForVersion (url: string, version: string): Promise<string | null> {
  let seen: string | null = null
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    seen = (await getJson(`${url}/health`)).body.model_version
    if (seen === version) return seen
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return seen
}

/** Writes new metadata the safe way: a temp file renamed into place. */
function republish (dir: string, version: string): void {
  writeFileSync(join(dir, 'model.json.tmp'), JSON.stringify({ ...kShippedMeta, model_version: version }))
  renameSync(join(dir, 'model.json.tmp'), join(dir, 'model.json'))
}

t.test('SIGHUP reloads the model file in a running server', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'hup_v1' })
  const { url, pid, exited } = await startChild(t, ['--model-path', v1])
  t.equal((await getJson(`${url}/health`)).body.model_version, 'hup_v1')
  republish(dir, 'hup_v2')
  process.kill(pid, 'SIGHUP')
  t.equal(await waitForVersion(url, 'hup_v2'), 'hup_v2', 'the new version serves after SIGHUP')
  process.kill(pid, 'SIGTERM')
  t.equal(await exited, 0)
})

t.test('watch_models reloads when the model folder changes', async (t) => {
  const dir = t.testdir()
  const v1 = writeModel(dir, 'model', { model_version: 'watch_v1' })
  const { url, pid, exited } = await startChild(t, ['--model-path', v1, '--watch-models', 'true'])
  republish(dir, 'watch_v2')
  t.equal(await waitForVersion(url, 'watch_v2'), 'watch_v2', 'the new version serves after the file changed')
  process.kill(pid, 'SIGTERM')
  t.equal(await exited, 0)
})
