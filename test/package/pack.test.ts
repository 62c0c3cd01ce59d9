/**
 * The npm package as a user gets it: `npm pack` (its `prepare` builds dist/), the tarball
 * installed into an empty project with `npm ci --offline` (a lockfile made from this repository's,
 * so every dependency comes from the local npm cache, never the network), then from there:
 *
 * - `import 'ml-prediction-server/client'` does not load uWebSockets.js or onnxruntime-node
 *   (a module resolve hook refuses them; the same hook makes the server entry fail, so it works);
 * - the types of both entries resolve for a TypeScript consumer (tsc, NodeNext);
 * - the `ml-prediction-server` command: --version, check-model (0, 1, 2), and `serve`, which the
 *   installed client then calls over HTTP and /ws on 127.0.0.1;
 * - `npm start`'s prestart (tsc -b) writes nothing when dist/ is current.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const kRoot = resolve('.')
const kPkg = JSON.parse(readFileSync(join(kRoot, 'package.json'), 'utf8')) as { name: string, version: string, dependencies: Record<string, string>, bin: Record<string, string>, license: string }
const kTsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

/** exit code, stdout, stderr of a command that may fail. */
async function exec (file: string, args: string[], cwd: string, timeout = 120_000): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, timeout, maxBuffer: 32 << 20 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) }
  }
}

/** A consumer lockfile: the package from the tarball, its dependencies as this repository locked them. */
function consumerLock (tarball: string): unknown {
  const lock = JSON.parse(readFileSync(join(kRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> }
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { [kPkg.name]: `file:${tarball}` } },
    [`node_modules/${kPkg.name}`]: { version: kPkg.version, resolved: `file:${tarball}`, integrity, license: kPkg.license, dependencies: kPkg.dependencies, bin: kPkg.bin },
  }
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry.link === true) continue
    // This repository's lock has no `resolved`; with it (and the integrity), npm finds each
    // tarball in its cache without asking the registry for package metadata.
    const name = (entry.name as string | undefined) ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()!}-${entry.version as string}.tgz`, ...entry }
  }
  return { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }
}

const kHook = `
// Refuses the server's native modules: importing them from the client entry is the bug tested for.
export async function resolve (specifier, context, next) {
  const result = await next(specifier, context)
  if (/uWebSockets\\.js|uws-pack|onnxruntime-node/.test(result.url)) throw new Error('heavy module loaded: ' + result.url)
  return result
}
`

t.test('npm pack, install offline, use the client and the command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-pack-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

  const pack = await exec('npm', ['pack', '--json', '--pack-destination', dir], kRoot, 300_000)
  t.equal(pack.code, 0, 'npm pack', { stderr: pack.stderr.slice(-2000) })
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = info!.files.map((f) => f.path)
  for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/client/index.d.ts', 'dist/src/cli/main.js', 'schemas/prediction.fbs', 'models/xgboost_phase1_v2_calibrated.onnx', 'models/xgboost_phase1_v1.onnx', 'config/default.json']) {
    t.ok(files.includes(f), `tarball has ${f}`)
  }
  t.same(files.filter((f) => /^(test|src|bench|training)\//.test(f) || f.endsWith('.map')), [], 'no tests, sources or maps in the tarball')
  const tarball = join(dir, info!.filename)

  const proj = join(dir, 'consumer')
  await run('mkdir', ['-p', proj])
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { [kPkg.name]: `file:${tarball}` } }))
  writeFileSync(join(proj, 'package-lock.json'), JSON.stringify(consumerLock(tarball)))
  const install = await exec('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], proj, 300_000)
  t.equal(install.code, 0, 'npm ci --offline in the consumer', { stderr: install.stderr.slice(-2000) })

  writeFileSync(join(proj, 'hook.mjs'), kHook)
  writeFileSync(join(proj, 'register.mjs'), "import { register } from 'node:module'\nregister('./hook.mjs', import.meta.url)\n")
  const clientOnly = await exec(process.execPath, ['--import', './register.mjs', '--input-type=module', '-e',
    `const c = await import('${kPkg.name}/client'); console.log(typeof c.PredictionClient, typeof c.RemoteError)`], proj)
  t.equal(clientOnly.code, 0, `client entry imports without uWS or onnxruntime ${clientOnly.stderr}`)
  t.equal(clientOnly.stdout.trim(), 'function function')
  const serverEntry = await exec(process.execPath, ['--import', './register.mjs', '--input-type=module', '-e', `await import('${kPkg.name}')`], proj)
  t.not(serverEntry.code, 0, 'the hook catches the server entry (it does load uWS/onnxruntime)')
  t.match(serverEntry.stderr, /heavy module loaded/)

  writeFileSync(join(proj, 'types.ts'), `
import { PredictionClient, type Prediction } from '${kPkg.name}/client'
import { createServer, kErrorTable } from '${kPkg.name}'
export const make = (): PredictionClient => new PredictionClient({ url: 'http://127.0.0.1:1' })
export const p: Prediction['direction'] = 'LONG'
export const start: typeof createServer = createServer
export const status: 503 = kErrorTable.ERR_OVERLOADED.statusCode
`)
  const types = await exec(process.execPath, [kTsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', 'types.ts'], proj)
  t.equal(types.code, 0, `both entries' types resolve in a TypeScript consumer ${types.stdout}`)

  const bin = join(proj, 'node_modules', '.bin', 'ml-prediction-server')
  t.equal((await exec(bin, ['--version'], proj)).stdout.trim(), kPkg.version, '--version')
  const model = join('node_modules', kPkg.name, 'models', 'xgboost_phase1_v2_calibrated.onnx')
  const ok = await exec(bin, ['check-model', model], proj)
  t.equal(ok.code, 0, `check-model on the shipped model ${ok.stderr}`)
  t.match(ok.stdout, /^ok: .*xgboost_phase1_v2_calibrated/)
  t.equal((await exec(bin, ['check-model', join('node_modules', kPkg.name, 'schemas', 'prediction.fbs')], proj)).code, 1, 'check-model on a non-model: 1')
  t.equal((await exec(bin, ['check-model'], proj)).code, 2, 'check-model without a file: 2')

  // serve from the installed package, then call it with the installed client.
  const server = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', '0', '--workers', '1', '--warmup-runs', '1', '--log-format', 'json', '--model-path', model], { cwd: proj, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => { server.on('exit', (code) => { resolve(code) }) })
  t.teardown(async () => { if (server.exitCode === null) { server.kill('SIGKILL'); await exited } })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error(`no listening line in 60 s:\n${out}`)) }, 60_000)
    server.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /"event":"listening".*?"port":(\d+)/.exec(out)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}:\n${out}`)) })
  })
  const call = await exec(process.execPath, ['--input-type=module', '-e', `
import { PredictionClient } from '${kPkg.name}/client'
const client = new PredictionClient({ url: 'http://127.0.0.1:${port}', timeoutMs: 10000 })
await client.waitForConnection(10000)
const p = await client.predict({ price: 612.5, volume: 10, symbol: 'PACKUSDT' })
const h = await client.healthCheck()
await client.close()
console.log(JSON.stringify({ direction: p.direction, symbol: p.symbol, healthy: h.healthy }))
`], proj, 60_000)
  t.equal(call.code, 0, `installed client calls the installed server ${call.stderr}`)
  const result = JSON.parse(call.stdout.trim().split('\n').pop()!) as { direction: string, symbol: string, healthy: boolean }
  t.match(result, { symbol: 'PACKUSDT', healthy: true })
  t.ok(result.direction === 'LONG' || result.direction === 'SHORT')
  const docs = await fetch(`http://127.0.0.1:${port}/openapi.json`)
  t.equal(docs.status, 200, '/openapi.json from the installed package')
  server.kill('SIGTERM')
  t.equal(await exited, 0, 'serve drains and exits 0 on SIGTERM')
})

t.test('prestart does not rebuild a current dist/', async (t) => {
  // Here, after `npm pack` (whose prepare brought dist/ up to date), so no two builds share dist/.
  const files = ['dist/src/index.js', 'dist/src/cli/main.js', 'dist/tsconfig.tsbuildinfo']
  const before = files.map((f) => statSync(f).mtimeMs)
  const started = Date.now()
  await run('npm', ['run', '--silent', 'prestart'], { timeout: 300_000 })
  t.same(files.map((f) => statSync(f).mtimeMs), before, 'no output rewritten')
  t.ok(Date.now() - started < 60_000, `up-to-date check took ${Date.now() - started} ms`)
})
