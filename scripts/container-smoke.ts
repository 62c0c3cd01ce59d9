/**
 * Container recipe smoke test without a Docker engine.
 *
 *   node --import tsx scripts/container-smoke.ts [--keep] [--cold] [--context DIR]
 *
 *   --keep         keep the temporary tree (printed) for inspection
 *   --cold         an empty npm cache instead of the persistent, seeded one
 *   --context DIR  another build context (a checkout, `git archive` output) instead of this tree
 *
 * Reads the Dockerfile and replays it in a clean temporary directory, one folder per stage
 * standing in for the stage's filesystem root:
 *   - COPY from the build context (the working tree, filtered by .dockerignore) and
 *     COPY --from=<stage>, with --chown honoured;
 *   - every RUN, verbatim, with `sh -c` in the stage's WORKDIR, as an unprivileged user (created
 *     with useradd when this runs as root); `--mount=type=cache` becomes a persistent npm cache
 *     (like BuildKit's), `--cold` uses an empty one instead;
 *   - the runtime stage's files end up owned by root, as in an image, except what COPY --chown
 *     gave the service user; the models folder is made read-only (chmod -R a-w);
 *   - the final CMD (must be exec form) is started as the unprivileged user with the Dockerfile's
 *     ENV (paths under WORKDIR mapped into the temp tree), on 127.0.0.1 and a free port, with
 *     LOG_FILE=logs/service.log to prove the service user can write its log folder;
 *   - the HEALTHCHECK command itself is polled until it passes, one POST /predict must answer,
 *     then STOPSIGNAL is sent and the process must drain and exit 0.
 *
 * Not exercised: the base image itself (this machine's Node and glibc stand in for
 * node:22-bookworm-slim's), layer caching, image size, Docker's networking and read-only bind
 * mounts (file permissions stand in for `:ro`).
 *
 * Exits 0 and prints "container smoke: OK" on success; any failed step exits 1 with its reason.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.js'

const kRepo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** The build context: the working tree by default, `--context DIR` for another checkout. */
let kContext = kRepo
const kUser = process.env.SMOKE_USER ?? 'mlsmoke'
const kRunTimeoutMs = 240_000
const kReadyTimeoutMs = 60_000
const kStopTimeoutMs = 20_000

// ---- Dockerfile parsing -----------------------------------------------------------------------

export interface Instruction {
  readonly op: string
  readonly args: string
  readonly line: number
}

/** Instructions in order: comments dropped, `\` continuations joined (Docker's rules, simplified). */
export function parseDockerfile (text: string): Instruction[] {
  const out: Instruction[] = []
  let buffer = ''
  let startLine = 0
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const trimmed = raw.trim()
    if (trimmed.startsWith('#')) continue
    if (buffer === '' && trimmed === '') continue
    if (buffer === '') startLine = i + 1
    if (trimmed.endsWith('\\')) {
      buffer += trimmed.slice(0, -1) + ' '
      continue
    }
    buffer += trimmed
    const match = /^(\S+)\s*(.*)$/s.exec(buffer.trim())
    if (match !== null) out.push({ op: match[1]!.toUpperCase(), args: match[2]!.trim(), line: startLine })
    buffer = ''
  }
  if (buffer.trim() !== '') throw new Error('Dockerfile ends inside a line continuation')
  return out
}

/** Splits leading `--flag=value` options from the rest of an instruction's arguments. */
export function splitFlags (args: string): { flags: Map<string, string>, rest: string } {
  const flags = new Map<string, string>()
  let rest = args
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest)
    if (m === null) break
    flags.set(m[1]!, m[2] ?? '')
    rest = rest.slice(m[0].length)
  }
  return { flags, rest }
}

/** `ENV a=b c="d e"` or legacy `ENV a b`. */
export function parseEnv (args: string): Array<[string, string]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args)
    if (m === null) throw new Error(`ENV ${args}: cannot parse`)
    return [[m[1]!, m[2]!]]
  }
  const pairs: Array<[string, string]> = []
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)\s*/g
  let m: RegExpExecArray | null
  while ((m = re.exec(args)) !== null) {
    const value = m[2]!.startsWith('"') ? JSON.parse(m[2]!) as string : m[2]!
    pairs.push([m[1]!, value])
  }
  return pairs
}

/** `[opts] CMD ["a", "b"]` -> the exec-form array (shell form is refused: signals must reach node). */
export function execForm (what: string, args: string): string[] {
  try {
    const parsed: unknown = JSON.parse(args)
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((x) => typeof x === 'string')) return parsed
  } catch { /* handled below */ }
  throw new Error(`${what} must be in exec form (a JSON array), got: ${args}`)
}

// ---- .dockerignore ----------------------------------------------------------------------------

function globToRegExp (pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') {
      if (pattern[i + 1] === '*') { re += '.*'; i++; if (pattern[i + 1] === '/') i++ } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Docker's rule: the last pattern matching the path or one of its parent folders decides. */
export function dockerIgnore (text: string): (rel: string) => boolean {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!')
    const pattern = posix.normalize(negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '')
    return { negate, re: globToRegExp(pattern) }
  })
  return (rel: string) => {
    const parts = rel.split('/')
    let ignored = false
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) { ignored = !rule.negate; break }
      }
    }
    return ignored
  }
}

// ---- the replay -------------------------------------------------------------------------------

interface Stage {
  readonly name: string
  readonly root: string
  workdir: string
  readonly env: Map<string, string>
  user: string | null
  healthcheck: string[] | null
  cmd: string[] | null
  stopSignal: NodeJS.Signals
  /** Paths (in the temp tree) that COPY --chown gave to a non-root user. */
  readonly chowned: string[]
}

interface RunAs { uid: number, gid: number, name: string }

function log (message: string): void {
  process.stdout.write(`[container-smoke] ${message}\n`)
}

function fail (message: string): never {
  throw new Error(message)
}

function sh (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`)
  return r.stdout
}

function ensureUser (): RunAs {
  const self = { uid: process.getuid!(), gid: process.getgid!(), name: String(process.getuid!()) }
  if (self.uid !== 0) {
    log(`not root: every step runs as uid ${self.uid} (already unprivileged); root-owned image files are not simulated`)
    return self
  }
  if (spawnSync('id', ['-u', kUser]).status !== 0) {
    sh('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', kUser])
    log(`created unprivileged user ${kUser}`)
  }
  const uid = Number(sh('id', ['-u', kUser]).trim())
  const gid = Number(sh('id', ['-g', kUser]).trim())
  if (uid === 0) fail(`${kUser} is uid 0`)
  return { uid, gid, name: kUser }
}

function chownTree (path: string, uid: number, gid: number): void {
  if (process.getuid!() !== 0) return
  sh('chown', ['-R', `${uid}:${gid}`, path])
}

/** Maps an absolute image path into the stage's temp root; relative paths resolve against WORKDIR. */
function mapPath (stage: Stage, p: string): string {
  const abs = posix.isAbsolute(p) ? p : posix.join(stage.workdir, p)
  return join(stage.root, abs)
}

function copyFromContext (ignored: (rel: string) => boolean, srcRel: string, dest: string): number {
  const src = join(kContext, srcRel)
  if (!existsSync(src)) fail(`COPY ${srcRel}: not in the build context`)
  const rel = posix.normalize(srcRel).replace(/^\.\//, '').replace(/\/$/, '')
  if (ignored(rel)) fail(`COPY ${srcRel}: excluded by .dockerignore`)
  let files = 0
  const walk = (from: string, to: string, relPath: string): void => {
    const st = lstatSync(from)
    if (st.isDirectory()) {
      mkdirSync(to, { recursive: true })
      for (const entry of readdirSync(from)) {
        const childRel = `${relPath}/${entry}`
        if (!ignored(childRel)) walk(join(from, entry), join(to, entry), childRel)
      }
    } else {
      mkdirSync(dirname(to), { recursive: true })
      cpSync(from, to)
      files++
    }
  }
  walk(src, dest, rel)
  return files
}

function runStep (stage: Stage, as: RunAs, command: string, npmCache: string, home: string): Promise<void> {
  chownTree(stage.root, as.uid, as.gid)
  const cwd = mapPath(stage, '.')
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      env: { ...baseEnv(home), ...mappedEnv(stage), npm_config_cache: npmCache },
      uid: as.uid,
      gid: as.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
    }, kRunTimeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`RUN ${command}\nexited ${code ?? signal}:\n${output.slice(-4000)}`))
    })
  })
}

function baseEnv (home: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    npm_config_update_notifier: 'false',
  }
  for (const key of ['npm_config_registry', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy']) {
    const v = process.env[key]
    if (v !== undefined) env[key] = v
  }
  return env
}

/** The stage's ENV with values that are paths under its WORKDIR mapped into the temp tree. */
function mappedEnv (stage: Stage): Record<string, string> {
  const out: Record<string, string> = {}
  const wd = stage.workdir.replace(/\/$/, '')
  for (const [k, v] of stage.env) {
    out[k] = wd !== '' && (v === wd || v.startsWith(`${wd}/`)) ? join(stage.root, v) : v
  }
  return out
}

async function waitFor (what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe()) return
    if (Date.now() > deadline) fail(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

function runCommand (argv: string[], opts: { cwd: string, env: Record<string, string>, as: RunAs, timeoutMs: number }): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env, uid: opts.as.uid, gid: opts.as.gid, stdio: 'ignore' })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs)
    child.on('error', () => { clearTimeout(timer); resolve(127) })
    child.on('close', (code) => { clearTimeout(timer); resolve(code ?? 1) })
  })
}

function uidOf (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1)
}

function duSh (path: string): string {
  const r = spawnSync('du', ['-sh', path], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.split('\t')[0]! : '?'
}

export async function main (argv: string[]): Promise<void> {
  const keep = argv.includes('--keep')
  const cold = argv.includes('--cold')
  const ctxIndex = argv.indexOf('--context')
  if (ctxIndex >= 0) kContext = resolve(argv[ctxIndex + 1]!)
  const started = Date.now()
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`

  const as = ensureUser()
  const work = mkdtempSync(join(tmpdir(), 'ml-container-smoke-'))
  chmodSync(work, 0o755)
  const home = join(work, 'home')
  mkdirSync(home, { recursive: true })
  chownTree(home, as.uid, as.gid)
  // BuildKit's --mount=type=cache keeps npm's download cache between builds; so does this replay
  // (content-addressed, checked against package-lock's integrity hashes), unless --cold.
  const npmCache = cold ? join(work, 'npm-cache') : join(tmpdir(), `ml-container-smoke-npm-cache-${as.uid}`)
  mkdirSync(npmCache, { recursive: true })
  // Seed it from the invoking user's npm cache (CI has just run `npm ci`), as a warm BuildKit cache
  // would be: tarballs are then read locally, still verified against package-lock's hashes.
  const ownCache = join(process.env.npm_config_cache ?? join(process.env.HOME ?? '/root', '.npm'), '_cacache')
  if (!cold && !existsSync(join(npmCache, '_cacache')) && existsSync(ownCache)) {
    sh('cp', ['-a', ownCache, join(npmCache, '_cacache')])
    log(`seeded the npm cache from ${ownCache}`)
  }
  chownTree(npmCache, as.uid, as.gid)
  log(`work dir ${work}, npm cache ${npmCache}${cold ? ' (cold)' : ''}, running steps as ${as.name} (uid ${as.uid})`)

  let server: ChildProcess | null = null
  try {
    const ignored = dockerIgnore(existsSync(join(kContext, '.dockerignore')) ? readFileSync(join(kContext, '.dockerignore'), 'utf8') : '')
    const stages = new Map<string, Stage>()
    let stage: Stage | null = null
    for (const ins of parseDockerfile(readFileSync(join(kContext, 'Dockerfile'), 'utf8'))) {
      const where = `Dockerfile:${ins.line} ${ins.op}`
      if (ins.op === 'FROM') {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) ?? fail(`${where}: cannot parse`)
        const name = m[2] ?? `stage${stages.size}`
        stage = { name, root: join(work, name), workdir: '/', env: new Map(), user: null, healthcheck: null, cmd: null, stopSignal: 'SIGTERM', chowned: [] }
        mkdirSync(stage.root, { recursive: true })
        stages.set(name, stage)
        log(`stage ${name} (base ${m[1]}: this machine's Node ${process.version} stands in)`)
        continue
      }
      if (stage === null) fail(`${where} before FROM`)
      switch (ins.op) {
        case 'WORKDIR':
          stage.workdir = posix.resolve(stage.workdir, ins.args)
          mkdirSync(mapPath(stage, '.'), { recursive: true })
          break
        case 'ENV':
          for (const [k, v] of parseEnv(ins.args)) stage.env.set(k, v)
          break
        case 'COPY': {
          const { flags, rest } = splitFlags(ins.args)
          for (const f of flags.keys()) if (f !== 'from' && f !== 'chown') fail(`${where}: flag --${f} not supported by the replay`)
          const parts = rest.split(/\s+/)
          if (parts.length < 2) fail(`${where}: needs a source and a destination`)
          const destArg = parts.pop()!
          const dest = mapPath(stage, destArg)
          const intoDir = destArg.endsWith('/') || parts.length > 1
          const targets: string[] = []
          for (const src of parts) {
            const target = intoDir ? join(dest, basename(src)) : dest
            if (flags.has('from')) {
              const from = stages.get(flags.get('from')!) ?? fail(`${where}: unknown stage ${flags.get('from')}`)
              const source = mapPath(from, src)
              if (!existsSync(source)) fail(`${where}: ${src} does not exist in stage ${from.name}`)
              cpSync(source, target, { recursive: true })
            } else {
              const n = copyFromContext(ignored, src, target)
              if (n === 0 && !statSync(join(kContext, src)).isDirectory()) fail(`${where}: ${src} copied nothing`)
            }
            targets.push(target)
          }
          if (flags.has('chown')) {
            const owner = flags.get('chown')!
            if (/^(0|root)(:|$)/.test(owner)) fail(`${where}: --chown to root is pointless here`)
            stage.chowned.push(...targets)
          }
          break
        }
        case 'RUN': {
          const { flags, rest } = splitFlags(ins.args)
          for (const [f, v] of flags) {
            if (f !== 'mount' || !v.startsWith('type=cache')) fail(`${where}: flag --${f}=${v} not supported by the replay`)
          }
          const t0 = Date.now()
          await runStep(stage, as, rest, npmCache, home)
          log(`RUN (${stage.name}) ${rest.length > 90 ? rest.slice(0, 87) + '...' : rest}  [${((Date.now() - t0) / 1000).toFixed(1)} s]`)
          break
        }
        case 'USER':
          stage.user = ins.args
          break
        case 'HEALTHCHECK': {
          const m = /^(.*?)\bCMD\s+(.*)$/s.exec(ins.args) ?? fail(`${where}: only HEALTHCHECK [options] CMD [...] is supported`)
          stage.healthcheck = execForm('HEALTHCHECK CMD', m[2]!)
          break
        }
        case 'STOPSIGNAL':
          stage.stopSignal = ins.args as NodeJS.Signals
          break
        case 'CMD':
          stage.cmd = execForm('CMD', ins.args)
          break
        case 'EXPOSE': case 'LABEL':
          break
        default:
          fail(`${where}: instruction not supported by the replay`)
      }
    }
    const runtime = stage ?? fail('Dockerfile has no stage')
    if (runtime.user === null || /^(0|root)(:|$)/.test(runtime.user)) fail(`the final stage must switch to a non-root USER, has ${runtime.user ?? 'none'}`)
    const cmd = runtime.cmd ?? fail('the final stage has no CMD')
    const healthcheck = runtime.healthcheck ?? fail('the final stage has no HEALTHCHECK')
    const app = mapPath(runtime, '.')

    // Image ownership: everything root's, except what COPY --chown gave the service user.
    if (process.getuid!() === 0) {
      chownTree(runtime.root, 0, 0)
      for (const p of runtime.chowned) chownTree(p, as.uid, as.gid)
      spawnSync('chmod', ['-R', 'go-w', runtime.root])
    }
    // Models mounted read-only.
    const models = join(app, 'models')
    if (!existsSync(models)) fail('the image has no models folder')
    sh('chmod', ['-R', 'a-w', models])
    if (await runCommand(['sh', '-c', 'test -w models || test -w "$(ls models/* | head -n 1)"'], { cwd: app, env: baseEnv(home), as, timeoutMs: 5000 }) === 0) {
      fail('the service user can write to models/')
    }
    if (existsSync(join(app, 'node_modules', 'typescript'))) fail('dev dependencies (typescript) are in the runtime stage')
    if (existsSync(join(app, 'src'))) fail('sources (src/) are in the runtime stage')
    log(`runtime tree: ${duSh(app)} (node_modules ${duSh(join(app, 'node_modules'))}); ${readdirSync(app).sort().join(' ')}  [${elapsed()}]`)

    // Start the CMD the way the engine would: as the image's USER, with its ENV.
    const port = await freePort()
    const env: Record<string, string> = { ...baseEnv(home), ...mappedEnv(runtime), HOST: '127.0.0.1', PORT: String(port), WORKERS: '2', LOG_FILE: 'logs/service.log' }
    log(`CMD ${JSON.stringify(cmd)} as uid ${as.uid}, MODEL_PATH=${env.MODEL_PATH}, port ${port}`)
    let output = ''
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolveExit) => {
      server = spawn(cmd[0]!, cmd.slice(1), { cwd: app, env, uid: as.uid, gid: as.gid, stdio: ['ignore', 'pipe', 'pipe'] })
      server.stdout!.on('data', (d: Buffer) => { output += d.toString() })
      server.stderr!.on('data', (d: Buffer) => { output += d.toString() })
      server.on('close', (code, signal) => { resolveExit({ code, signal }) })
    })
    const srv = server as unknown as ChildProcess
    let exitedEarly = false
    void exited.then(() => { exitedEarly = true })

    await waitFor('HEALTHCHECK passing', kReadyTimeoutMs, async () => {
      if (exitedEarly) fail(`the server exited during start-up:\n${output.slice(-3000)}`)
      return await runCommand(healthcheck, { cwd: app, env, as, timeoutMs: 5000 }) === 0
    })
    log(`HEALTHCHECK ${JSON.stringify(healthcheck).slice(0, 60)}... passes  [${elapsed()}]`)
    if (uidOf(srv.pid!) !== as.uid) fail(`the server runs as uid ${uidOf(srv.pid!)}, expected ${as.uid}`)

    const res = await fetch(`http://127.0.0.1:${port}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ price: 612.5, volume: 1520.3, bid_volume: 812.0, ask_volume: 640.5, symbol: 'WBNBUSDT' }),
      signal: AbortSignal.timeout(10_000),
    })
    const body = await res.json() as Record<string, unknown>
    if (res.status !== 200 || typeof body.probability_long !== 'number') fail(`POST /predict answered ${res.status} ${JSON.stringify(body)}`)
    log(`POST /predict -> 200 ${JSON.stringify(body)}`)

    const logFile = join(app, 'logs', 'service.log')
    log(`sending ${runtime.stopSignal} to pid ${srv.pid}`)
    srv.kill(runtime.stopSignal)
    const timeout = new Promise<'timeout'>((r) => setTimeout(r, kStopTimeoutMs, 'timeout').unref())
    const result = await Promise.race([exited, timeout])
    if (result === 'timeout') fail(`no exit within ${kStopTimeoutMs} ms of ${runtime.stopSignal}`)
    server = null
    if (result.code !== 0) fail(`exit ${result.code ?? result.signal} after ${runtime.stopSignal}, expected 0:\n${output.slice(-3000)}`)
    if (!output.includes('"event":"shutdown_complete"')) fail('no shutdown_complete log line on stdout')
    const fileLog = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
    if (!fileLog.includes('"event":"listening"')) fail('logs/service.log was not written by the service user')
    log(`exit code 0 after ${runtime.stopSignal}; stdout and logs/service.log hold the JSON log lines  [${elapsed()}]`)
    log(`container smoke: OK in ${elapsed()}`)
  } finally {
    if (server !== null) (server as ChildProcess).kill('SIGKILL')
    if (!keep) {
      // The read-only models folder must be writable again to be removed by a non-root runner.
      spawnSync('chmod', ['-R', 'u+w', work])
      rmSync(work, { recursive: true, force: true })
    } else {
      log(`kept ${work}`)
    }
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`[container-smoke] FAILED: ${(err as Error).message}\n`)
    process.exitCode = 1
  })
}


