/**
 * Issue 14 point 4: does the worker pool earn its keep with the GAF-CNN member? The example model
 * set (models/ensemble_phase2_v1.set.json: the calibrated trees + the GAF-CNN) served with the
 * CNN member's pool at 1, 2 and 4 workers (the tree member at 1; and one server with both at 2),
 * each with batching on (max_batch_size 64) and off (1), against the single tree model (the
 * shipped default) at 1 worker as the in-run baseline, and at 2 and 4 workers for memory per
 * worker. Every server is started up front and loaded in turn, round after round, with the order
 * reversed every other round, so a shared machine's drift falls on all of them alike.
 *
 * The CNN only answers a symbol with >= 32 bars of history and a BTC price: every server is
 * first fed 40 one-minute bars of one symbol (timestamp_ms one minute apart, with btc_price),
 * and the load's body then falls into the last of those bars (repeated requests inside a bar
 * update it, adding no history), so every measured row has a full window. Each load is framed by
 * /metrics?format=json scrapes of the set's per-member row counts: the CNN's share of the rows
 * is measured, not assumed.
 *
 * Member files must sit beside the set file, so the set files are written into a temporary folder
 * next to copies of the members (never into models/), removed at the end.
 *
 * Memory: each server's RSS (and its anonymous / file-backed parts and thread count, from
 * /proc/<pid>/status) right after it is ready and again after all loads; MB per worker is the
 * difference between pools of 1 and 4 workers of the same model, divided by 3.
 */

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BenchContext, Target } from '../lib/bench-context.js'
import { failedCount, type StepResult } from '../lib/results.js'
import { processCpuTimeMs, type ServerSpec } from '../lib/server-process.js'
import { clockTicksPerSecond } from '../lib/system-info.js'
import { formatCount, formatMs, renderTable } from '../lib/table.js'
import type { ScenarioSet } from './scenario-set.js'

const kRounds = 5
const kTree = 'xgboost_phase1_v2_calibrated'
const kCnn = 'gaf_cnn_phase2_v1'
const kSetDirToken = '<SET_DIR>'
const kSymbol = 'BNBUSDT'
/** Bars fed before measuring: the CNN's window is 32 (31 finalized + the current one); 40 leaves margin. */
const kWarmBars = 40
const kBarMs = 60_000

interface Variant {
  readonly name: string
  /** null: the single tree model (shipped default model_path). */
  readonly set: { readonly tree: number, readonly cnn: number } | null
  /** Workers of the single model. */
  readonly workers: number
  readonly maxBatch: 64 | 1
  /** Loaded at c64 and c1 (false: c64 only, for memory and the tree's own worker curve). */
  readonly c1: boolean
}

const kVariants: readonly Variant[] = [
  { name: 'tree-w1', set: null, workers: 1, maxBatch: 64, c1: true },
  { name: 'tree-w1-nobatch', set: null, workers: 1, maxBatch: 1, c1: true },
  { name: 'set-cnn1', set: { tree: 1, cnn: 1 }, workers: 1, maxBatch: 64, c1: true },
  { name: 'set-cnn1-nobatch', set: { tree: 1, cnn: 1 }, workers: 1, maxBatch: 1, c1: true },
  { name: 'set-cnn2', set: { tree: 1, cnn: 2 }, workers: 1, maxBatch: 64, c1: true },
  { name: 'set-cnn2-nobatch', set: { tree: 1, cnn: 2 }, workers: 1, maxBatch: 1, c1: true },
  { name: 'set-cnn4', set: { tree: 1, cnn: 4 }, workers: 1, maxBatch: 64, c1: true },
  { name: 'set-cnn4-nobatch', set: { tree: 1, cnn: 4 }, workers: 1, maxBatch: 1, c1: true },
  { name: 'set-both2', set: { tree: 2, cnn: 2 }, workers: 1, maxBatch: 64, c1: false },
  { name: 'tree-w2', set: null, workers: 2, maxBatch: 64, c1: false },
  { name: 'tree-w4', set: null, workers: 4, maxBatch: 64, c1: false },
]

function setFileName (s: { tree: number, cnn: number }): string { return `tree${s.tree}-cnn${s.cnn}.set.json` }

function specOf (v: Variant): ServerSpec {
  const flags = ['--workers', String(v.workers), '--max-batch-size', String(v.maxBatch)]
  if (v.set !== null) flags.push('--model-path', join(kSetDirToken, setFileName(v.set)))
  const what = v.set === null
    ? `single tree model ${kTree}, ${v.workers} worker${v.workers > 1 ? 's' : ''}`
    : `model set: ${kTree} ${v.set.tree} worker${v.set.tree > 1 ? 's' : ''} + ${kCnn} ${v.set.cnn} worker${v.set.cnn > 1 ? 's' : ''}`
  return { name: v.name, kind: 'prediction', flags, description: `${what}, max_batch_size ${v.maxBatch}` }
}

/** The set files, in a fresh temporary folder beside copies of the members and their metadata. */
function writeSetFolder (repoRoot: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-phase2-'))
  const example = JSON.parse(readFileSync(join(repoRoot, 'models', 'ensemble_phase2_v1.set.json'), 'utf8')) as
    { set_version: string, combiner: string, members: Array<{ model: string, weight: number, workers?: number }> }
  for (const m of example.members) {
    const stem = m.model.replace(/\.onnx$/, '')
    for (const ext of ['.onnx', '.json', '.golden.json']) {
      try { copyFileSync(join(repoRoot, 'models', stem + ext), join(dir, stem + ext)) } catch (err) {
        if (ext !== '.golden.json') throw err // the golden file is optional
      }
    }
  }
  for (const v of kVariants) {
    if (v.set === null) continue
    const members = example.members.map((m) => ({ ...m, workers: m.model.startsWith(kCnn) ? v.set!.cnn : v.set!.tree }))
    writeFileSync(join(dir, setFileName(v.set)), `${JSON.stringify({ ...example, members }, null, 2)}\n`)
  }
  return dir
}

interface MemberRows { readonly [modelVersion: string]: { used: number, noHistory: number, failed: number } }

/** Per member, the rows it answered since start; null for a single model. */
async function memberRows (url: string): Promise<MemberRows | null> {
  const res = await fetch(`${url}/metrics?format=json`, { signal: AbortSignal.timeout(5000) })
  const m = await res.json() as { model_set?: { members: Array<{ model_version: string, rows_used: number, rows_no_history: number, rows_failed: number }> } | null }
  if (m.model_set == null) return null
  const out: Record<string, { used: number, noHistory: number, failed: number }> = {}
  for (const x of m.model_set.members) out[x.model_version] = { used: x.rows_used, noHistory: x.rows_no_history, failed: x.rows_failed }
  return out
}

interface ProcMemory { readonly rssKb: number, readonly anonKb: number, readonly fileKb: number, readonly threads: number }

function procMemory (pid: number): ProcMemory | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
    return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), fileKb: kb('RssFile'), threads: kb('Threads') }
  } catch {
    return null
  }
}

function snapshotBody (price: number, btc: number, timestampMs: number): string {
  return JSON.stringify({ price, volume: 1520.3, bid_volume: 812.0, ask_volume: 640.5, symbol: kSymbol, btc_price: btc, timestamp_ms: timestampMs })
}

/**
 * Feeds kWarmBars one-minute bars (a gentle wave in price and BTC, so no window is flat) ending in
 * the bar the load's body falls into. Bounded: 40 requests, each with a 5 s timeout.
 */
async function warm (target: Target, firstBarMs: number): Promise<void> {
  for (let k = 0; k < kWarmBars; k++) {
    const body = snapshotBody(612.5 + 2 * Math.sin(k), 95_000 + 50 * Math.cos(k / 3), firstBarMs + k * kBarMs)
    const res = await fetch(`${target.url}/predict`, {
      method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000),
    })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`warming ${target.name}: bar ${k} answered ${res.status}: ${text.slice(0, 300)}`)
  }
}

/** User + system CPU ms of one thread; the main thread (tid = pid) is the server's event loop. */
function threadCpuMs (pid: number, tid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicksPerSecond()
  } catch {
    return null
  }
}

interface StepShare {
  readonly id: string
  /** Rows each member answered during the load (set servers; 0 for a single model). */
  readonly treeRows: number
  readonly cnnRows: number
  readonly cnnNoHistory: number
  readonly cnnFailed: number
  /** CPU of the event-loop thread and of the whole process during the load (includes the window's warm-up and drain). */
  readonly eventLoopCpuMs: number | null
  readonly processCpuMs: number | null
}

async function loadWithShare (ctx: BenchContext, t: Target, o: Parameters<BenchContext['load']>[1], shares: StepShare[]): Promise<StepResult> {
  const pid = t.process?.pid ?? null
  const before = await memberRows(t.url)
  const el0 = pid === null ? null : threadCpuMs(pid, pid)
  const all0 = pid === null ? null : processCpuTimeMs(pid)
  const step = await ctx.load(t, o)
  const el1 = pid === null ? null : threadCpuMs(pid, pid)
  const all1 = pid === null ? null : processCpuTimeMs(pid)
  const after = await memberRows(t.url)
  const d = (v: string, k: 'used' | 'noHistory' | 'failed'): number => before === null || after === null ? 0 : (after[v]?.[k] ?? 0) - (before[v]?.[k] ?? 0)
  shares.push({
    id: step.id, treeRows: d(kTree, 'used'), cnnRows: d(kCnn, 'used'), cnnNoHistory: d(kCnn, 'noHistory'), cnnFailed: d(kCnn, 'failed'),
    eventLoopCpuMs: el0 !== null && el1 !== null ? el1 - el0 : null,
    processCpuMs: all0 !== null && all1 !== null ? all1 - all0 : null,
  })
  return step
}

function median (xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

interface Row {
  readonly server: string
  readonly load: 'c64' | 'c1'
  readonly rounds: number[]
  readonly ratios: number[]
  readonly p50Us: number
  readonly p99Us: number
  readonly meanBatch: number | null
  readonly cnnShare: number | null
  readonly serverCpuPercent: number | null
  /** Event-loop thread CPU per answered request, and the rest of the process (workers, GC) per request (µs). */
  readonly eventLoopUsPerReq: number | null
  readonly otherUsPerReq: number | null
  /** Server-side inference time per batch (the slowest member's) / mean batch size (µs). */
  readonly inferUsPerRow: number | null
  readonly failed: number
}

function summarize (ctx: BenchContext, shares: readonly StepShare[]): Row[] {
  const rows: Row[] = []
  for (const load of ['c64', 'c1'] as const) {
    for (const v of kVariants) {
      const steps = ctx.steps.filter((s) => s.server === v.name && s.step.startsWith(`phase2-${load}-r`))
      if (steps.length === 0) continue
      const ratios = steps.map((s) => {
        const base = ctx.steps.find((b) => b.server === 'tree-w1' && b.step === s.step)
        return base?.load != null && base.load.throughput > 0 ? s.load!.throughput / base.load.throughput : NaN
      })
      let rowsSum = 0
      let batches = 0
      for (const s of steps) {
        const b = s.serverSide?.batchSize
        if (b != null && b.mean !== null) { rowsSum += b.mean * b.count; batches += b.count }
      }
      const sh = shares.filter((x) => steps.some((s) => s.id === x.id))
      // CPU is read around the whole load (warm-up + window + drain): per request over every row the
      // server ran in it (the same scrapes bracket it; one row per request here).
      const answers = rowsSum
      const elCpu = sh.every((x) => x.eventLoopCpuMs !== null) ? sh.reduce((a, x) => a + x.eventLoopCpuMs!, 0) : null
      const allCpu = sh.every((x) => x.processCpuMs !== null) ? sh.reduce((a, x) => a + x.processCpuMs!, 0) : null
      let inferMs = 0
      let inferBatches = 0
      for (const s of steps) {
        const inf = s.serverSide?.inferenceMs
        if (inf != null && inf.mean !== null) { inferMs += inf.mean * inf.count; inferBatches += inf.count }
      }
      const tree = sh.reduce((a, x) => a + x.treeRows, 0)
      const cnn = sh.reduce((a, x) => a + x.cnnRows, 0)
      const cpu = steps.map((s) => s.serverCpuPercent).filter((x): x is number => x !== null)
      rows.push({
        server: v.name,
        load,
        rounds: steps.map((s) => s.load!.throughput),
        ratios,
        p50Us: median(steps.map((s) => s.load!.latencyUs.p50 ?? NaN)),
        p99Us: median(steps.map((s) => s.load!.latencyUs.p99 ?? NaN)),
        meanBatch: batches > 0 ? rowsSum / batches : null,
        cnnShare: v.set === null ? null : (tree > 0 ? cnn / tree : 0),
        serverCpuPercent: cpu.length > 0 ? median(cpu) : null,
        eventLoopUsPerReq: elCpu !== null && answers > 0 ? (elCpu * 1000) / answers : null,
        otherUsPerReq: elCpu !== null && allCpu !== null && answers > 0 ? ((allCpu - elCpu) * 1000) / answers : null,
        inferUsPerRow: inferBatches > 0 && rowsSum > 0 ? (inferMs * 1000) / rowsSum : null,
        failed: steps.reduce((a, s) => a + failedCount(s.load!), 0),
      })
    }
  }
  return rows
}

const mb = (kb: number): string => (kb / 1024).toFixed(1)

export const phase2Set: ScenarioSet = {
  name: 'phase2',
  description: 'issue 14: the model set (trees + GAF-CNN) with CNN workers 1/2/4 x batching on/off vs the single tree model, ' +
    'c64 and c1, 5 alternating rounds; CNN row share; RSS per worker',
  approxSeconds: 540,
  servers: kVariants.map(specOf),
  async run (ctx) {
    const dir = writeSetFolder(ctx.options.repoRoot)
    const shares: StepShare[] = []
    try {
      const specs = this.servers.map((s) => ({ ...s, flags: s.flags.map((f) => f.replace(kSetDirToken, dir)) }))
      const targets = await ctx.startServers(specs)
      const memReady = new Map<string, ProcMemory | null>()
      for (const t of targets) memReady.set(t.name, t.process === null ? null : procMemory(t.process.pid))
      // Bars ending a minute before now: in the past (never "too far in the future"), and the
      // load's body falls into the last of them.
      const firstBarMs = (Math.floor(Date.now() / kBarMs) - kWarmBars - 1) * kBarMs
      const lastBarMs = firstBarMs + (kWarmBars - 1) * kBarMs
      const body = snapshotBody(612.5, 95_000, lastBarMs + 1000)
      for (const t of targets) await warm(t, firstBarMs)
      for (const t of targets) {
        const rows = await memberRows(t.url)
        if (rows !== null && (rows[kCnn]?.used ?? 0) === 0) throw new Error(`${t.name}: the CNN member answered no row after ${kWarmBars} warm-up bars`)
      }
      ctx.progress.info(`warmed ${targets.length} servers with ${kWarmBars} one-minute bars of ${kSymbol}; load body: ${body}`)
      for (let round = 1; round <= kRounds; round++) {
        const order = round % 2 === 1 ? targets : [...targets].reverse()
        for (const t of order) {
          await loadWithShare(ctx, t, { step: `phase2-c64-r${round}`, label: `/predict c64 round ${round}`, mode: 'closed', connections: 64, body, warmupMs: 1000, durationMs: 4000 }, shares)
        }
        for (const t of order) {
          if (!kVariants.find((v) => v.name === t.name)!.c1) continue
          await loadWithShare(ctx, t, { step: `phase2-c1-r${round}`, label: `/predict c1 round ${round}`, mode: 'closed', connections: 1, body, warmupMs: 500, durationMs: 3000 }, shares)
        }
      }
      // Let the last load's garbage settle before the second reading.
      await new Promise((resolve) => setTimeout(resolve, 2000))
      const memEnd = new Map<string, ProcMemory | null>()
      for (const t of targets) memEnd.set(t.name, t.process === null ? null : procMemory(t.process.pid))

      const rows = summarize(ctx, shares)
      const throughputTable = renderTable(
        ['load', 'server', 'req/s (median)', 'each round', 'x tree-w1 (per round)', 'p50 ms', 'p99 ms', 'mean batch', 'CNN rows', 'srv CPU',
          'EL us/req', 'rest us/req', 'infer us/row', 'failed'],
        rows.map((r) => [
          r.load, r.server, formatCount(median(r.rounds)), r.rounds.map(formatCount).join(' / '),
          r.ratios.map((x) => `x${x.toFixed(2)}`).join(' '), formatMs(r.p50Us), formatMs(r.p99Us),
          r.meanBatch === null ? '-' : r.meanBatch.toFixed(1), r.cnnShare === null ? '-' : `${(r.cnnShare * 100).toFixed(1)}%`,
          r.serverCpuPercent === null ? '-' : `${Math.round(r.serverCpuPercent)}%`,
          r.eventLoopUsPerReq === null ? '-' : r.eventLoopUsPerReq.toFixed(1), r.otherUsPerReq === null ? '-' : r.otherUsPerReq.toFixed(1),
          r.inferUsPerRow === null ? '-' : r.inferUsPerRow.toFixed(1), formatCount(r.failed),
        ]), 2)
      const memRows = kVariants.map((v) => ({ v, ready: memReady.get(v.name) ?? null, end: memEnd.get(v.name) ?? null }))
      const memTable = renderTable(
        ['server', 'threads', 'RSS ready MB', 'RSS after MB', 'anon after MB', 'file after MB'],
        memRows.map(({ v, ready, end }) => [v.name, String(end?.threads ?? '-'), ready === null ? '-' : mb(ready.rssKb),
          end === null ? '-' : mb(end.rssKb), end === null ? '-' : mb(end.anonKb), end === null ? '-' : mb(end.fileKb)]))
      const rss = (name: string, which: Map<string, ProcMemory | null>): number => which.get(name)?.rssKb ?? NaN
      const perWorker = {
        treeWorkerMbReady: (rss('tree-w4', memReady) - rss('tree-w1', memReady)) / 3 / 1024,
        treeWorkerMbAfter: (rss('tree-w4', memEnd) - rss('tree-w1', memEnd)) / 3 / 1024,
        cnnWorkerMbReady: (rss('set-cnn4', memReady) - rss('set-cnn1', memReady)) / 3 / 1024,
        cnnWorkerMbAfter: (rss('set-cnn4', memEnd) - rss('set-cnn1', memEnd)) / 3 / 1024,
        cnnMemberMbAfter: (rss('set-cnn1', memEnd) - rss('tree-w1', memEnd)) / 1024,
      }
      const report = [
        'Phase 2 (issue 14): the model set vs the single tree model, same run, alternating rounds. "CNN rows" = rows the CNN member',
        'answered / rows the tree member answered during the loads (from /metrics?format=json model_set.members[].rows_used).',
        'EL us/req: CPU of the server\'s event-loop thread per answered request (/proc/<pid>/task/<pid>/stat, around the whole load);',
        'rest us/req: every other thread of the server (inference workers, GC, libuv) per request; infer us/row: the server\'s',
        'inference time per batch (a set: its slowest member) / rows per batch. Medians of p50/p99 over the rounds.',
        throughputTable,
        '',
        'Memory (/proc/<pid>/status): at ready, and after all loads + 2 s.',
        memTable,
        `MB per worker by difference (4 workers - 1 worker) / 3: tree ${perWorker.treeWorkerMbReady.toFixed(1)} at ready, ` +
          `${perWorker.treeWorkerMbAfter.toFixed(1)} after loads; CNN ${perWorker.cnnWorkerMbReady.toFixed(1)} at ready, ` +
          `${perWorker.cnnWorkerMbAfter.toFixed(1)} after loads; the CNN member with 1 worker (set-cnn1 - tree-w1, after loads): ${perWorker.cnnMemberMbAfter.toFixed(1)} MB`,
      ].join('\n')
      ctx.extra = {
        report,
        data: {
          setFiles: Object.fromEntries(kVariants.filter((v) => v.set !== null).map((v) => [v.name, v.set])),
          warm: { symbol: kSymbol, bars: kWarmBars, barMs: kBarMs, body },
          rows,
          shares,
          memory: Object.fromEntries(memRows.map(({ v, ready, end }) => [v.name, { ready, end }])),
          perWorkerMb: perWorker,
        },
      }
    } finally {
      // The servers hold the copies open (model reloads read them): stop them before removing.
      await ctx.stopServers()
      rmSync(dir, { recursive: true, force: true })
    }
  },
}
