/**
 * `npm run bench [-- options]`: the instrument every performance claim of the project is judged
 * by (issue 5). Starts the server(s) of a scenario set as their own processes, loads them from
 * generator threads, and writes the table (stdout), a JSON result and an SVG chart
 * (bench/results/). See bench/README.md for what each figure means and how to trust it.
 */

import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { BenchContext, type BenchOptions } from './lib/bench-context.js'
import { renderChart } from './lib/chart-svg.js'
import { readRun, renderComparison } from './lib/compare.js'
import { kResultSchema, type BenchRun } from './lib/results.js'
import { stopAllServers } from './lib/server-process.js'
import { collectMachineInfo, findRepoRoot, loadSnapshot } from './lib/system-info.js'
import { formatCount, renderReport, stepNotes } from './lib/table.js'
import { kScenarioSets } from './scenarios/registry.js'

const kUsage = `Usage: npm run bench [-- options]

  --set <name>          scenario set (default "default"); see below
  --url <url>           target a running server (http://127.0.0.1:8000) instead of starting one
  --compare <file>      print ratios against an earlier result JSON
  --baseline <dir>      an earlier checkout, built (npm ci && npm run build there): set "ab" runs
                        its server beside this one, same loads, alternating, in one run
  --report <file>       re-print the table and re-draw the chart of a saved result (no load)
  --out <dir>           where results go (default bench/results)
  --scale <f>           multiply every warm-up and duration (default 1; tests use 0.05)
  --threads <n>         generator worker threads (default 1: on 2 cores the other is the server's)
  --build <dist|src>    dist (default): build with tsc, then run the server as \`npm start\` does (node
                        dist/...); src: run it from source under tsx, no build (measured 2x slower at
                        64 connections: not what production runs)
  --pin                 taskset: generator and wrk on CPU 0, servers on the others
  --no-wrk              skip the wrk cross-check
  --no-floor            skip the model-only floor
  --quiet               no progress display
  --ready-timeout-ms <n> how long a server may take to report ready (default 120000)

Scenario sets:
${[...kScenarioSets.values()].map((s) => `  ${s.name.padEnd(10)} ~${s.approxSeconds} s  ${s.description}`).join('\n')}
`

interface CliOptions extends BenchOptions {
  readonly out: string
  readonly compare: string | null
  readonly report: string | null
}

/** Parses and checks the command line; returns an Error naming the option (autocannon validate style). */
export function parseCli (argv: readonly string[], repoRoot: string): CliOptions | Error | 'help' {
  let values
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        set: { type: 'string', default: 'default' },
        url: { type: 'string' },
        baseline: { type: 'string' },
        compare: { type: 'string' },
        report: { type: 'string' },
        out: { type: 'string' },
        scale: { type: 'string', default: '1' },
        threads: { type: 'string', default: '1' },
        build: { type: 'string', default: 'dist' },
        pin: { type: 'boolean', default: false },
        'no-wrk': { type: 'boolean', default: false },
        'no-floor': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        'ready-timeout-ms': { type: 'string', default: '120000' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }))
  } catch (err) {
    return err as Error
  }
  if (values.help === true) return 'help'
  if (!kScenarioSets.has(values.set!)) return new Error(`--set must be one of ${[...kScenarioSets.keys()].join(', ')}, got "${values.set}"`)
  const scale = Number(values.scale)
  if (!(scale > 0 && scale <= 10)) return new Error(`--scale must be a number in (0, 10], got "${values.scale}"`)
  const threads = Number(values.threads)
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64)) return new Error(`--threads must be an integer from 1 to 64, got "${values.threads}"`)
  if (values.build !== 'src' && values.build !== 'dist') return new Error(`--build must be src or dist, got "${values.build}"`)
  const readyTimeoutMs = Number(values['ready-timeout-ms'])
  if (!(Number.isInteger(readyTimeoutMs) && readyTimeoutMs >= 1000)) return new Error(`--ready-timeout-ms must be an integer >= 1000, got "${values['ready-timeout-ms']}"`)
  if (values.url !== undefined) {
    try {
      const u = new URL(values.url)
      if (u.protocol !== 'http:') return new Error(`--url must be an http:// URL, got "${values.url}"`)
    } catch {
      return new Error(`--url must be a URL such as http://127.0.0.1:8000, got "${values.url}"`)
    }
  }
  return {
    set: values.set!,
    repoRoot,
    url: values.url ?? null,
    baselineRoot: values.baseline === undefined ? null : resolve(values.baseline),
    scale,
    threads,
    build: values.build,
    pin: values.pin === true,
    wrk: values['no-wrk'] !== true,
    floor: values['no-floor'] !== true,
    quiet: values.quiet === true,
    readyTimeoutMs,
    out: resolve(values.out ?? join(repoRoot, 'bench', 'results')),
    compare: values.compare ?? null,
    report: values.report ?? null,
  }
}

function stamp (iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')
}

function rssNotes (run: BenchRun): string[] {
  const notes: string[] = []
  for (const s of run.steps) {
    const rss = s.serverRssKb
    if (rss === null || rss.samples.length === 0) continue
    const mb = (kb: number): string => (kb / 1024).toFixed(1)
    notes.push(`${s.id}: server RSS over the load: first ${mb(rss.samples[0]!)} MB, last ${mb(rss.samples[rss.samples.length - 1]!)} MB, ` +
      `max ${mb(Math.max(...rss.samples))} MB (${rss.samples.length} samples)`)
  }
  return notes
}

export async function main (argv: readonly string[]): Promise<number> {
  const repoRoot = findRepoRoot()
  const options = parseCli(argv, repoRoot)
  if (options === 'help') { process.stdout.write(kUsage); return 0 }
  if (options instanceof Error) { process.stderr.write(`${options.message}\n\n${kUsage}`); return 2 }

  if (options.report !== null) {
    const run = readRun(options.report)
    process.stdout.write(`${renderReport(run)}\n`)
    const svg = renderChart(run)
    if (svg !== null) {
      const path = options.report.replace(/\.json$/, '') + '.svg'
      writeFileSync(path, svg)
      process.stdout.write(`\nchart: ${path}\n`)
    }
    if (options.compare !== null) process.stdout.write(`\n${renderComparison(run, readRun(options.compare), options.compare)}\n`)
    return 0
  }

  const set = kScenarioSets.get(options.set)!
  if (options.build === 'dist' && options.url === null) {
    // The servers run what `npm start` runs; built here so that dist/ is the code being measured.
    const built = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.json')], { cwd: repoRoot, stdio: 'inherit' })
    if (built.status !== 0) { process.stderr.write('bench: the TypeScript build failed (tsc -p tsconfig.json)\n'); return 1 }
  }
  const machine = collectMachineInfo(repoRoot)
  const loadBefore = loadSnapshot()
  const ctx = new BenchContext(options, machine)
  const started = new Date()
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping the servers this bench started\n`)
    void stopAllServers().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  ctx.progress.info(`bench "${set.name}" (~${Math.round(set.approxSeconds * Math.min(1, options.scale))} s): ${set.description}`)
  ctx.progress.info(`load average before: ${loadBefore.loadAverage.join(' ')}; ${ctx.pinning}`)
  try {
    await set.run(ctx)
  } finally {
    await ctx.stopServers()
    await stopAllServers()
  }
  const finished = new Date()
  const loadAfter = loadSnapshot()
  const partial: BenchRun = {
    schema: kResultSchema,
    set: set.name,
    description: set.description,
    command: ['npm run bench --', ...argv],
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 100) / 10,
    machine,
    loadBefore,
    loadAfter,
    pinning: ctx.pinning,
    options: { scale: options.scale, threads: options.threads, build: options.build, url: options.url, pin: options.pin },
    servers: ctx.servers,
    steps: ctx.steps,
    floor: ctx.floor,
    crossCheck: ctx.crossCheck,
    notes: [],
    extra: ctx.extra,
  }
  const notes = [...ctx.notes, ...stepNotes(ctx.steps), ...rssNotes(partial)]
  if (ctx.crossCheck !== null && !ctx.crossCheck.agrees) {
    notes.push('the bench and wrk DISAGREE by more than the tolerance: do not trust this run\'s figures until that is explained')
  }
  const run: BenchRun = { ...partial, notes }

  mkdirSync(options.out, { recursive: true })
  const base = join(options.out, `${stamp(run.startedAt)}-${set.name}`)
  writeFileSync(`${base}.json`, `${JSON.stringify(run, null, 1)}\n`)
  const svg = renderChart(run)
  if (svg !== null) writeFileSync(`${base}.svg`, svg)

  process.stdout.write(`\n${renderReport(run)}\n`)
  if (options.compare !== null) process.stdout.write(`\n${renderComparison(run, readRun(options.compare), basename(options.compare))}\n`)
  process.stdout.write(`\nresults: ${base}.json${svg !== null ? `\nchart:   ${base}.svg` : ''}\n` +
    `took ${run.durationS} s; ${formatCount(run.steps.length)} steps\n`)
  return 0
}

// Run when executed, not when imported by a test.
if (process.argv[1] !== undefined && resolve(process.argv[1]).replace(/\.[jt]s$/, '') === resolve(new URL(import.meta.url).pathname).replace(/\.[jt]s$/, '')) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code },
    async (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
      await stopAllServers()
      process.exitCode = 1
    },
  )
}
