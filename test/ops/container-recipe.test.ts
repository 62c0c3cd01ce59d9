/**
 * The container recipe. No Docker engine runs here, so this proves what can be proved without one:
 * - statically, that the Dockerfile has the shape production needs (multi-stage, .npmrc before
 *   every npm ci, dev dependencies omitted at run time, non-root numeric USER, HEALTHCHECK on
 *   readiness, MODEL_PATH where the old service had it, exec-form CMD, STOPSIGNAL SIGTERM) and that
 *   .dockerignore lets every COPY source through;
 * - dynamically, by running scripts/container-smoke.ts, which replays the Dockerfile's own steps
 *   in a clean directory as an unprivileged user with a read-only models folder, starts the CMD,
 *   polls the HEALTHCHECK command, predicts once, sends SIGTERM and expects exit 0.
 * The replay needs the npm registry and takes ~1 min with a warm npm cache, ~2 min cold:
 * CI_SKIP_CONTAINER_SMOKE=1 skips it (the static checks still run).
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { dockerIgnore, execForm, parseDockerfile, parseEnv, splitFlags, type Instruction } from '../../scripts/container-smoke.js'

// The replay can take ~2 min on a cold npm cache: raise this file's limit above .taprc's 120 s.
t.setTimeout(300_000)

const repo = fileURLToPath(new URL('../../', import.meta.url))
const dockerfile = readFileSync(`${repo}Dockerfile`, 'utf8')
const instructions = parseDockerfile(dockerfile)

function stages (): Instruction[][] {
  const out: Instruction[][] = []
  for (const ins of instructions) {
    if (ins.op === 'FROM') out.push([])
    out[out.length - 1]!.push(ins)
  }
  return out
}

// The image's Node is the one package.json's engines promise (docs/development.md, "Node versions"): the
// floor's major, which is also the range's only major (uWebSockets.js ships binaries up to it).
const engines = (JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { engines: { node: string } }).engines.node
const engineMajor = /^>=(\d+)\.\d+\.\d+ <(\d+)$/.exec(engines)

t.test('the Dockerfile has the production shape', async (t) => {
  t.ok(engineMajor !== null && Number(engineMajor[2]) === Number(engineMajor[1]) + 1, `engines.node is one major, ">=X.Y.Z <X+1": ${engines}`)
  const major = engineMajor?.[1] ?? '?'
  const all = stages()
  t.equal(all.length, 2, 'two stages: build and runtime')
  for (const stage of all) {
    t.match(stage[0]!.args, new RegExp(`^node:${major}-(bookworm-)?slim\\b`), `slim Node ${major} base, as engines.node: ${stage[0]!.args}`)
    const npmrc = stage.findIndex((i) => i.op === 'COPY' && /(^|\s)\.npmrc(\s|$)/.test(i.args))
    const npmCi = stage.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))
    t.ok(npmrc >= 0 && npmCi > npmrc, `${stage[0]!.args}: .npmrc (onnxruntime-node install skip) is copied before npm ci`)
  }
  const [build, runtime] = all as [Instruction[], Instruction[]]
  t.ok(build.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)), 'build stage compiles')
  const runtimeCi = runtime.find((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))
  t.match(runtimeCi?.args, /--omit=dev/, 'runtime installs production dependencies only')

  const copies = runtime.filter((i) => i.op === 'COPY').map((i) => splitFlags(i.args))
  const fromContext = copies.filter((c) => !c.flags.has('from')).flatMap((c) => c.rest.split(/\s+/).slice(0, -1))
  t.same(fromContext.sort(), ['.npmrc', 'config', 'models', 'package-lock.json', 'package.json', 'schemas'], 'runtime takes only package*.json, .npmrc, config/, models/, schemas/ from the context')
  t.ok(copies.some((c) => c.flags.get('from') === 'build' && /\/app\/dist\b/.test(c.rest)), 'and dist/ from the build stage')

  const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args ?? ''
  t.match(user, /^[1-9]\d*(:\d+)?$/, 'runs as a numeric non-root user (verifiable by runAsNonRoot)')
  const env = new Map(runtime.filter((i) => i.op === 'ENV').flatMap((i) => parseEnv(i.args)))
  t.equal(env.get('MODEL_PATH'), '/app/models/xgboost_phase1_v2_calibrated.onnx', 'MODEL_PATH: the shipped default, in /app/models where the old service had its model')
  t.ok(runtime.some((i) => i.op === 'WORKDIR' && i.args === '/app'), 'WORKDIR /app')

  const health = runtime.find((i) => i.op === 'HEALTHCHECK')
  t.ok(health, 'HEALTHCHECK present')
  const hc = execForm('HEALTHCHECK', health!.args.replace(/^.*?\bCMD\s+/s, ''))
  t.equal(hc[0], 'node', 'health check uses node (no curl in slim images)')
  t.match(hc.join(' '), /\/health\/ready/, 'health check is readiness')
  t.equal(runtime.find((i) => i.op === 'STOPSIGNAL')?.args, 'SIGTERM')
  t.same(execForm('CMD', runtime.find((i) => i.op === 'CMD')!.args), ['node', 'dist/src/cli/serve.js'], 'exec-form CMD: node is PID 1 and gets SIGTERM')
  t.throws(() => execForm('CMD', 'node dist/src/cli/serve.js'), /exec form/, 'shell form would be refused by the replay')

  const serve = readFileSync(`${repo}src/cli/serve.ts`, 'utf8')
  t.match(serve, /process\.on\('SIGTERM'/, 'serve.ts handles SIGTERM itself (needed as PID 1)')
})

t.test('.dockerignore keeps the context to what the Dockerfile copies', async (t) => {
  const ignored = dockerIgnore(readFileSync(`${repo}.dockerignore`, 'utf8'))
  for (const ins of instructions.filter((i) => i.op === 'COPY')) {
    const { flags, rest } = splitFlags(ins.args)
    if (flags.has('from')) continue
    for (const src of rest.split(/\s+/).slice(0, -1)) {
      t.notOk(ignored(src), `COPY source ${src} is in the context`)
      t.ok(existsSync(`${repo}${src}`), `COPY source ${src} exists`)
    }
  }
  for (const p of ['node_modules/ajv/package.json', 'dist/src/cli/serve.js', '.git/HEAD', 'test/ops/container-recipe.test.ts', 'training/out/x.csv', 'logs/service.log', 'models/xgboost_phase1_v1.golden.json']) {
    t.ok(ignored(p), `${p} stays out of the context`)
  }
  t.notOk(ignored('src/cli/serve.ts'))
  t.notOk(ignored('models/xgboost_phase1_v1.onnx'))
  t.notOk(ignored('models/xgboost_phase1_v2_calibrated.onnx'))
})

t.test('the Dockerfile steps, replayed as an unprivileged user, serve and stop cleanly', async (t) => {
  if (process.env.CI_SKIP_CONTAINER_SMOKE === '1') {
    t.pass('CI_SKIP_CONTAINER_SMOKE=1: container replay skipped (npm ci twice and tsc, ~1-3 min)', { skip: true })
    return
  }
  const started = Date.now()
  const { code, output } = await new Promise<{ code: number | null, output: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/container-smoke.ts'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGTERM') }, 280_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
  t.comment(output.trim().split('\n').filter((l) => !l.includes('npm warn')).join('\n'))
  t.comment(`replay took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  t.equal(code, 0, 'container-smoke exits 0')
  t.match(output, /HEALTHCHECK .* passes/, 'the HEALTHCHECK command passes')
  t.match(output, /POST \/predict -> 200/, 'a prediction is served')
  t.match(output, /exit code 0 after SIGTERM/, 'SIGTERM drains and exits 0')
  t.match(output, /container smoke: OK/)
})

// Make sure the module under test is what the recipe parses (no silent drift of the parser).
t.test('the replay parser reads continuation lines and flags', async (t) => {
  const parsed = parseDockerfile('FROM a AS b\n# c\nRUN --mount=type=cache,target=/x one \\\n  && two\nENV A=1 B="x y"\n')
  t.same(parsed.map((i) => i.op), ['FROM', 'RUN', 'ENV'])
  const run = splitFlags(parsed[1]!.args)
  t.equal(run.flags.get('mount'), 'type=cache,target=/x')
  t.equal(run.rest, 'one  && two')
  t.same(parseEnv(parsed[2]!.args), [['A', '1'], ['B', 'x y']])
})
