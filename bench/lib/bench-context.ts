/**
 * What a scenario set works with: start its servers (or take --url), run loads, sweeps, the wrk
 * cross-check and the model floor, and collect everything into one BenchRun. Each load is framed
 * by the server's own view (a /metrics/prometheus scrape before and after), its process CPU from
 * /proc, and the generator's CPU, so every figure comes with what it cost and who was busy.
 */

import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { mergeLoadResults, validateLoadSpec, runLoad } from './load-generator.js'
import type { LoadMode, LoadResult, LoadSpec, Transport } from './load-types.js'
import { kSettings } from '../../src/config/schema.js'
import { measureModelFloor, type FloorReport } from './model-floor.js'
import { Progress } from './progress.js'
import { bodyFor, kPredictBody, type HttpRoute } from './request-bodies.js'
import { failedCount, type CrossCheck, type ServerRecord, type SetExtra, type StepResult } from './results.js'
import { addSnapshots, breakdownOf, diffSnapshots, scrapePrometheus, type PromSnapshot } from './server-metrics.js'
import { ServerProcess, type ServerSpec } from './server-process.js'
import type { MachineInfo } from './system-info.js'
import { formatCount, formatMs } from './table.js'
import { aggregateWrk, runWrk, wrkAvailable, type WrkResult } from './wrk.js'

export interface BenchOptions {
  readonly set: string
  readonly repoRoot: string
  /** Target a running server instead of starting one. */
  readonly url: string | null
  /** Multiplies every warm-up and duration (tests use ~0.05). */
  readonly scale: number
  readonly threads: number
  readonly build: 'src' | 'dist'
  readonly pin: boolean
  readonly wrk: boolean
  readonly floor: boolean
  readonly quiet: boolean
  readonly readyTimeoutMs: number
  /** `--baseline <dir>`: an earlier checkout, built, whose server the `ab` set runs beside this one. */
  readonly baselineRoot?: string | null
}

export interface Target {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly url: string
  readonly process: ServerProcess | null
}

export interface LoadStepOptions {
  readonly step: string
  readonly label: string
  readonly sweep?: string | null
  readonly mode: LoadMode
  readonly connections: number
  readonly rate?: number | null
  /** Default http. */
  readonly transport?: Transport
  /** HTTP route; ignored for /ws. */
  readonly path?: HttpRoute
  /** Snapshots per request: /predict/batch rows, or a /ws batch frame's length (1: single frames). */
  readonly rows?: number
  /** /ws: requests in flight per connection (default 1). */
  readonly pipeline?: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly timeoutMs?: number
  readonly maxRequests?: number | null
  /** Sample the server's RSS this often during the load (memory-flat checks). */
  readonly sampleRssMs?: number
  /** A /predict (or single /ws) request body other than kPredictBody, e.g. one carrying timestamp_ms and btc_price. */
  readonly body?: string
}

interface Measured {
  readonly result: LoadResult
  readonly delta: PromSnapshot | null
  readonly serverCpuMs: number | null
  readonly wallMs: number
  readonly rss: { readonly before: number | null, readonly after: number | null, readonly samples: number[] } | null
}

function median (values: ReadonlyArray<number | null>): number | null {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

const kMinDurationMs = 300
const kCrossCheckTolerance = 0.2

export class BenchContext {
  readonly options: BenchOptions
  readonly machine: MachineInfo
  readonly steps: StepResult[]
  readonly servers: ServerRecord[]
  readonly notes: string[]
  readonly progress: Progress
  floor: FloorReport | null
  crossCheck: CrossCheck | null
  /** Set by a scenario set that reports more than the common tables (results.ts SetExtra). */
  extra: SetExtra | null
  /** What was pinned where, in words, for the result. */
  readonly pinning: string
  private readonly generatorCpus: string | null
  private readonly serverCpus: string | null
  private readonly targets: Target[]

  constructor (options: BenchOptions, machine: MachineInfo) {
    this.options = options
    this.machine = machine
    this.steps = []
    this.servers = []
    this.notes = []
    this.progress = new Progress(!options.quiet)
    this.floor = null
    this.crossCheck = null
    this.extra = null
    this.targets = []
    const cores = machine.logicalCores
    if (options.pin && machine.tasksetAvailable && cores >= 2) {
      this.generatorCpus = '0'
      this.serverCpus = cores === 2 ? '1' : `1-${cores - 1}`
      // -a: every thread of this process; generator threads started later inherit the mask.
      execFileSync('taskset', ['-a', '-p', '-c', this.generatorCpus, String(process.pid)], { stdio: 'ignore' })
      this.pinning = `pinned with taskset: generator (this process, all threads) and wrk on CPU ${this.generatorCpus}, ` +
        `servers on CPU ${this.serverCpus}`
    } else {
      this.generatorCpus = null
      this.serverCpus = null
      this.pinning = options.pin
        ? `not pinned: --pin asked but ${machine.tasksetAvailable ? `only ${cores} CPU` : 'taskset is not installed'}`
        : `not pinned: generator, servers and wrk share all ${cores} CPUs (taskset ${machine.tasksetAvailable ? 'available; --pin separates them' : 'not installed'})`
    }
  }

  /** A duration of the plan, scaled, never below a floor that still measures something. */
  ms (planned: number, floor = kMinDurationMs): number {
    return Math.max(floor, Math.round(planned * this.options.scale))
  }

  async startServers (specs: readonly ServerSpec[]): Promise<Target[]> {
    if (this.options.url !== null) {
      if (specs.length > 1) {
        throw new Error(`--url targets one running server, but set "${this.options.set}" compares ${specs.length} server configs ` +
          `(${specs.map((s) => s.name).join(', ')}); run it without --url so the bench starts them`)
      }
      const url = new URL(this.options.url)
      const target: Target = {
        name: 'external', host: url.hostname, port: Number(url.port || 80), url: `${url.protocol}//${url.host}`, process: null,
      }
      let health: Record<string, unknown> | null = null
      try {
        const res = await fetch(`${target.url}/health`, { signal: AbortSignal.timeout(5000) })
        health = await res.json() as Record<string, unknown>
      } catch { /* recorded as unknown */ }
      this.servers.push({ name: target.name, kind: 'external', description: `running server at ${target.url}`, command: null, url: target.url, pid: null, settings: health })
      this.targets.push(target)
      return [target]
    }
    const started: Target[] = []
    for (const spec of specs) {
      this.progress.info(`starting server "${spec.name}" (${spec.description}) ...`)
      if (spec.baseline === true && (this.options.baselineRoot ?? null) === null) {
        throw new Error(`set "${this.options.set}" runs server "${spec.name}" from an earlier build: give --baseline <dir> (a checkout built with npm run build)`)
      }
      const proc = await ServerProcess.start(spec, {
        repoRoot: spec.baseline === true ? this.options.baselineRoot! : this.options.repoRoot,
        build: this.options.build,
        cpus: this.serverCpus,
        readyTimeoutMs: this.options.readyTimeoutMs,
      })
      const target: Target = { name: spec.name, host: proc.host, port: proc.port, url: proc.url, process: proc }
      this.servers.push({
        name: spec.name, kind: spec.kind, description: spec.description, command: proc.command, url: proc.url, pid: proc.pid, settings: proc.settings,
      })
      this.targets.push(target)
      started.push(target)
    }
    return started
  }

  async stopServers (): Promise<void> {
    await Promise.all(this.targets.map(async (t) => {
      if (t.process === null) return
      const exit = await t.process.stop()
      if (exit.code !== 0 && exit.signal !== 'SIGTERM') {
        this.notes.push(`server "${t.name}" (pid ${t.process.pid}) exited with code ${exit.code}, signal ${exit.signal}` +
          `${exit.signal === 'SIGKILL' ? ' (it had not exited 20 s after SIGTERM)' : ''}; its last output:\n    ` +
          t.process.lastOutput.slice(-8).map((l) => l.slice(0, 300)).join('\n    '))
      }
    }))
  }

  /** The LoadSpec of a step, durations scaled. */
  spec (o: LoadStepOptions): LoadSpec {
    const transport = o.transport ?? 'http'
    const path = transport === 'http' ? (o.path ?? '/predict') : '/ws'
    const rows = transport === 'http' ? (path === '/predict' ? 1 : (o.rows ?? 32)) : (o.rows ?? 1)
    const spec: LoadSpec = {
      transport,
      path,
      body: rows === 1 && path !== '/predict/batch' ? (o.body ?? kPredictBody) : bodyFor('/predict/batch', rows),
      rowsPerRequest: rows,
      mode: o.mode,
      connections: o.connections,
      pipeline: transport === 'http' ? 1 : (o.pipeline ?? 1),
      rate: o.mode === 'open' ? Math.max(1, Math.round(o.rate ?? 0)) : null,
      warmupMs: this.ms(o.warmupMs, 100),
      durationMs: this.ms(o.durationMs),
      timeoutMs: o.timeoutMs ?? 5000,
      maxRequests: o.maxRequests ?? null,
      threads: this.options.threads,
    }
    const invalid = validateLoadSpec(spec)
    if (invalid !== null) throw invalid
    return spec
  }

  /** One load, framed by the server's scrapes, its CPU time and RSS. */
  private async measure (target: Target, spec: LoadSpec, label: string, sampleRssMs?: number): Promise<Measured> {
    this.progress.begin(`${label} @ ${target.name}`)
    const proc = target.process
    const before = await scrapePrometheus(target.url)
    const cpuBefore = proc?.cpuTimeMs() ?? null
    const rssBefore = proc?.rssKb() ?? null
    const samples: number[] = []
    const sampler = proc !== null && sampleRssMs !== undefined
      ? setInterval(() => { const kb = proc.rssKb(); if (kb !== null) samples.push(kb) }, sampleRssMs)
      : null
    const started = performance.now()
    let result: LoadResult
    try {
      result = await runLoad({ host: target.host, port: target.port }, spec, { onProgress: (p) => { this.progress.update(p) } })
    } finally {
      if (sampler !== null) clearInterval(sampler)
    }
    const wallMs = performance.now() - started
    const cpuAfter = proc?.cpuTimeMs() ?? null
    const after = await scrapePrometheus(target.url)
    const l = result.latencyUs
    this.progress.end(`${formatCount(result.throughput)} req/s${result.keptRate === false ? ' (rate NOT kept)' : ''}, ` +
      `p50 ${formatMs(l.p50)} ms, p99 ${formatMs(l.p99)} ms, max ${formatMs(l.max)} ms, failed ${failedCount(result)}`)
    return {
      result,
      delta: before !== null && after !== null ? diffSnapshots(before, after) : null,
      serverCpuMs: cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null,
      wallMs,
      rss: proc === null ? null : { before: rssBefore, after: proc.rssKb(), samples },
    }
  }

  private record (target: Target, o: { step: string, label: string, sweep?: string | null }, parts: readonly Measured[]): StepResult {
    const deltas = parts.map((m) => m.delta)
    const cpu = parts.every((m) => m.serverCpuMs !== null) ? parts.reduce((a, m) => a + m.serverCpuMs!, 0) : null
    const wall = parts.reduce((a, m) => a + m.wallMs, 0)
    const step: StepResult = {
      id: `${o.step}@${target.name}`,
      step: o.step,
      label: o.label,
      server: target.name,
      sweep: o.sweep ?? null,
      kind: 'load',
      load: mergeLoadResults(parts.map((m) => m.result)),
      wrk: null,
      serverSide: deltas.every((d) => d !== null) ? breakdownOf(addSnapshots(deltas as PromSnapshot[])) : null,
      serverCpuPercent: cpu === null ? null : (cpu / wall) * 100,
      serverRssKb: parts[0]!.rss === null ? null : {
        before: parts[0]!.rss.before, after: parts[parts.length - 1]!.rss!.after, samples: parts.flatMap((m) => m.rss?.samples ?? []),
      },
    }
    this.steps.push(step)
    return step
  }

  async load (target: Target, o: LoadStepOptions): Promise<StepResult> {
    const measured = await this.measure(target, this.spec(o), o.label, o.sampleRssMs)
    return this.record(target, o, [measured])
  }

  /**
   * Open-loop steps at increasing rates; stops after the first step whose rate was not kept (that
   * step is kept: it is the knee). Ids carry the fraction label so runs compare step by step.
   */
  async sweep (target: Target, sweep: string, points: ReadonlyArray<{ readonly id: string, readonly rate: number }>,
    base: Omit<LoadStepOptions, 'step' | 'label' | 'rate' | 'mode' | 'sweep'>): Promise<StepResult[]> {
    const out: StepResult[] = []
    for (const point of points) {
      const step = await this.load(target, {
        ...base, mode: 'open', rate: point.rate, sweep, step: `${sweep}-${point.id}`, label: `${sweep} ${point.id} (${formatCount(point.rate)}/s)`,
      })
      out.push(step)
      if (step.load!.keptRate === false) break
    }
    return out
  }

  /**
   * A closed-loop HTTP load measured in rounds, each followed by wrk with the same shape
   * (-t1 -cN, same request, same server): bench, wrk, bench, wrk, ... On a shared machine the load
   * drifts over tens of seconds, so one 10 s window of each, back to back, compares two different
   * machines; interleaving exposes both to the same drift. The bench rounds are merged exactly into
   * one step (the max-throughput figure); the verdict compares totals (all answers over all time)
   * and the median of the rounds' p50s, and keeps every round's figures for the spread.
   */
  async closedLoadWithWrk (target: Target, o: LoadStepOptions & { readonly rounds: number }): Promise<StepResult> {
    const spec = this.spec(o)
    const useWrk = this.options.wrk && wrkAvailable()
    if (!this.options.wrk) this.notes.push('wrk cross-check skipped (--no-wrk)')
    else if (!useWrk) this.notes.push('wrk cross-check skipped: wrk is not installed (apt-get install wrk)')
    const seconds = Math.max(1, Math.round(spec.durationMs / 1000))
    const parts: Measured[] = []
    const wrks: WrkResult[] = []
    const runWrkRound = async (i: number): Promise<void> => {
      this.progress.begin(`wrk -t1 -c${spec.connections} -d${seconds}s (round ${i}/${o.rounds}) @ ${target.name}`)
      const w = await runWrk({
        url: `${target.url}${spec.path}`,
        script: join(this.options.repoRoot, 'bench', 'wrk', 'post.lua'),
        threads: 1,
        connections: spec.connections,
        durationS: seconds,
        timeoutS: spec.timeoutMs / 1000,
        cpus: this.generatorCpus,
      })
      wrks.push(w)
      this.progress.end(`${formatCount(w.requestsPerSec)} req/s, p50 ${formatMs(w.latencyUs.p50)} ms, p99 ${formatMs(w.latencyUs.p99)} ms`)
    }
    for (let i = 1; i <= o.rounds; i++) {
      // Order alternates (bench-wrk, wrk-bench, ...) so that a drift in time favours neither; the
      // first bench round warms the server up longer, since it follows a light load.
      const roundSpec = i === 1 ? { ...spec, warmupMs: spec.warmupMs * 4 } : spec
      if (useWrk && i % 2 === 0) await runWrkRound(i)
      parts.push(await this.measure(target, roundSpec, `${o.label} (round ${i}/${o.rounds})`))
      if (useWrk && i % 2 === 1) await runWrkRound(i)
    }
    const bench = this.record(target, o, parts)
    if (wrks.length === 0) return bench
    const wrk = aggregateWrk(wrks)
    this.steps.push({
      id: `wrk-${o.step}@${target.name}`,
      step: `wrk-${o.step}`,
      label: `wrk cross-check (${o.step})`,
      server: target.name,
      sweep: null,
      kind: 'wrk',
      load: null,
      wrk,
      serverSide: null,
      serverCpuPercent: null,
      serverRssKb: null,
    })
    const rounds = parts.map((m, i) => ({
      benchThroughput: m.result.throughput, benchP50Us: m.result.latencyUs.p50,
      wrkThroughput: wrks[i]!.requestsPerSec, wrkP50Us: wrks[i]!.latencyUs.p50,
    }))
    const benchP50 = median(rounds.map((r) => r.benchP50Us))
    const wrkP50 = median(rounds.map((r) => r.wrkP50Us))
    const throughputRatio = wrk.requestsPerSec > 0 ? bench.load!.throughput / wrk.requestsPerSec : null
    const p50Ratio = benchP50 !== null && wrkP50 !== null && wrkP50 > 0 ? benchP50 / wrkP50 : null
    const within = (r: number | null): boolean => r !== null && Math.abs(r - 1) <= kCrossCheckTolerance
    this.crossCheck = {
      benchStep: bench.id,
      wrkStep: `wrk-${o.step}@${target.name}`,
      tolerance: kCrossCheckTolerance,
      method: `${o.rounds} interleaved rounds of ${seconds} s (bench then wrk -t1 -c${spec.connections}, wrk then bench, ...); ` +
        'throughput = all answers / all time; p50 = median of the rounds',
      bench: { throughput: bench.load!.throughput, p50Us: benchP50 },
      wrk: { throughput: wrk.requestsPerSec, p50Us: wrkP50 },
      throughputRatio,
      p50Ratio,
      agrees: within(throughputRatio) && within(p50Ratio),
      rounds,
    }
    if (wrk.non2xx3xx > 0) this.notes.push(`wrk saw ${wrk.non2xx3xx} non-2xx/3xx answers (its Requests/sec counts them)`)
    return bench
  }

  async modelFloor (batchSizes: readonly number[], budgetMsPerSize: number): Promise<void> {
    if (!this.options.floor) { this.notes.push('model-only floor skipped (--no-floor)'); return }
    this.progress.begin(`model-only floor, batch ${batchSizes.join('/')}`)
    // The model the benchmarked servers serve: they run with the default model_path (no flag sets it).
    const modelPath = join(this.options.repoRoot, kSettings.model_path.default)
    this.floor = await measureModelFloor(modelPath, batchSizes, this.ms(budgetMsPerSize, 200))
    this.progress.end(this.floor.results.map((f) => `b${f.batchSize} p50 ${f.callUs.p50} us`).join(', '))
  }
}
