/**
 * `npm run bench` end to end on tiny durations (--scale 0.03): the CLI starts the real server as
 * its own process with the shipped model, runs the whole default set (floor, loads, sweep, batch
 * route, and wrk when installed), stops the server by its PID, and writes the JSON and the chart.
 * Checks structure and consistency only, never speed.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { BenchRun } from '../../bench/lib/results.js'
import { checkConsistent } from './consistency.js'

const kRoot = new URL('../../', import.meta.url).pathname

function runCli (args: readonly string[], timeoutMs: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: kRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    // SIGTERM lets the bench stop the server it started before exiting.
    const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM') }, timeoutMs)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('the default set runs end to end against the real server', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-e2e-'))
  t.teardown(() => { rmSync(out, { recursive: true, force: true }) })
  const res = await runCli(['--scale', '0.03', '--out', out, '--quiet', '--ready-timeout-ms', '90000'], 110_000)
  t.equal(res.code, 0, `exit 0 (stderr: ${res.stderr.slice(-2000)})`)
  t.match(res.stdout, /p50\s+p90\s+p95\s+p99\s+p99\.9\s+max\s+p95<10ms/, 'the table has its columns and the target column')
  t.match(res.stdout, /machine: .+ logical cores/, 'the machine line is printed')

  const files = readdirSync(out)
  const jsonFile = files.find((f) => f.endsWith('-default.json'))
  t.ok(jsonFile, `a result JSON was written (${files.join(', ')})`)
  t.ok(files.some((f) => f.endsWith('-default.svg')), 'and its chart')
  const run = JSON.parse(readFileSync(join(out, jsonFile!), 'utf8')) as BenchRun
  t.equal(run.schema, 'ml-prediction-server/bench-result@1')
  t.ok(run.machine.logicalCores > 0 && run.machine.cpuModel.length > 0 && run.machine.memoryGb > 0, 'machine recorded')
  t.equal(run.machine.node, process.version)
  t.type(run.loadBefore.loadAverage[0], 'number')
  t.type(run.loadAfter.loadAverage[0], 'number')

  t.equal(run.servers.length, 1)
  const server = run.servers[0]!
  const argv = server.command!.join(' ')
  // Built by the bench itself and run as `npm start` runs it.
  t.match(argv, /dist\/src\/cli\/serve\.js --host 127\.0\.0\.1 --port 0/, `server started as its own process on loopback (${argv})`)
  t.type(server.settings?.workers, 'number', 'the server config is recorded from its own start-up line')
  t.throws(() => process.kill(server.pid!, 0), { code: 'ESRCH' }, 'the server was stopped')

  const loads = run.steps.filter((s) => s.kind === 'load')
  t.ok(loads.length >= 5, `${loads.length} load steps`)
  for (const s of loads) {
    checkConsistent(t, s.load!, s.id)
    t.ok(s.load!.generator.cpuPercent >= 0, `${s.id}: generator CPU recorded`)
    t.ok(s.serverSide !== null, `${s.id}: server-side breakdown scraped`)
  }
  const c64 = loads.find((s) => s.step === 'http-predict-c64')!
  t.ok(c64.load!.counts.ok > 0, 'the max-throughput step got answers')
  t.ok(c64.serverSide!.serverMs!.count > 0, 'the server counted them too')
  t.ok(loads.some((s) => s.sweep !== null), 'a sweep ran')
  const batch = loads.find((s) => s.step === 'http-batch32-c16')!
  t.equal(batch.load!.predictionsPerSec, batch.load!.throughput * 32, 'batch route: predictions = requests x rows')

  t.equal(run.floor?.results.map((f) => f.batchSize).join(','), '1,8,64', 'model floor per batch size')
  t.ok(run.floor!.results.every((f) => f.calls > 0 && f.callUs.p50 !== null))
  t.equal(run.floor!.inputName, 'features', 'input name from the metadata')

  if (run.steps.some((s) => s.kind === 'wrk')) {
    t.ok(run.crossCheck !== null, 'wrk ran, so the cross-check was computed')
    t.ok(run.crossCheck!.wrk.throughput > 0)
  } else {
    t.match(run.notes.join('\n'), /wrk/, 'wrk missing is said')
  }

  // The saved result re-renders without load, and compares with itself as x1.00.
  const report = await runCli(['--report', join(out, jsonFile!), '--compare', join(out, jsonFile!)], 30_000)
  t.equal(report.code, 0, report.stderr)
  t.match(report.stdout, /p95<10ms/)
  t.match(report.stdout, /http-predict-c64@default .* x1\.00/, 'self-comparison is x1.00')
  t.ok(existsSync(join(out, jsonFile!.replace(/\.json$/, '.svg'))))
})
