/**
 * The terminal report: one row per load (p50 ... max, throughput, failures), the old service's
 * target (p95 under 10 ms) marked on every row, then the server's own breakdown, the model-only
 * floor, the wrk cross-check and the notes (rate not kept, generator-bound, failures by kind).
 */

import { machineLine } from './system-info.js'
import { failedCount, failureDetail, kTargetP95Us, type BenchRun, type StepResult } from './results.js'

/** µs -> ms with three significant figures, no exponent. */
export function formatMs (us: number | null | undefined): string {
  if (us === null || us === undefined) return '-'
  const ms = us / 1000
  if (ms < 1) return ms.toFixed(3)
  if (ms < 10) return ms.toFixed(2)
  if (ms < 100) return ms.toFixed(1)
  return ms.toFixed(0)
}

export function formatCount (n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-'
  return Math.round(n).toLocaleString('en-US')
}

/** Left-aligned first column(s), right-aligned numbers. */
export function renderTable (header: readonly string[], rows: ReadonlyArray<readonly string[]>, leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells
    .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
    .join('  ')
    .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function loadCell (s: StepResult): string {
  if (s.kind === 'wrk') return `wrk -t${s.wrk?.command.find((c) => c.startsWith('-t'))?.slice(2) ?? '?'} c${s.wrk?.command.find((c) => c.startsWith('-c'))?.slice(2) ?? '?'}`
  const spec = s.load!.spec
  const rows = spec.rowsPerRequest > 1 ? ` x${spec.rowsPerRequest}` : ''
  const depth = spec.pipeline > 1 ? ` d${spec.pipeline}` : ''
  return spec.mode === 'open'
    ? `open ${formatCount(spec.rate)}/s c${spec.connections}${depth}${rows}`
    : `closed c${spec.connections}${depth}${rows}`
}

function targetMark (p95Us: number | null | undefined): string {
  if (p95Us === null || p95Us === undefined) return '-'
  return p95Us < kTargetP95Us ? 'yes' : 'NO'
}

export function mainTable (run: BenchRun): string {
  const header = ['scenario', 'server', 'load', 'req/s', 'pred/s', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max', 'p95<10ms', 'failed', 'samples']
  const rows = run.steps.map((s): string[] => {
    if (s.kind === 'wrk' && s.wrk !== null) {
      const w = s.wrk
      const failed = w.non2xx3xx + w.socketErrors.connect + w.socketErrors.read + w.socketErrors.write + w.socketErrors.timeout
      return [s.label, s.server, loadCell(s), formatCount(w.requestsPerSec), formatCount(w.requestsPerSec),
        formatMs(w.latencyUs.p50), formatMs(w.latencyUs.p90), '-', formatMs(w.latencyUs.p99), '-', formatMs(w.latencyUs.max),
        '-', formatCount(failed), formatCount(w.requests)]
    }
    const r = s.load!
    const l = r.latencyUs
    const rate = r.spec.mode === 'open' && r.keptRate === false ? `${formatCount(r.throughput)}!` : formatCount(r.throughput)
    return [s.label, s.server, loadCell(s), rate, formatCount(r.predictionsPerSec),
      formatMs(l.p50), formatMs(l.p90), formatMs(l.p95), formatMs(l.p99), formatMs(l.p999), formatMs(l.max),
      targetMark(l.p95), formatCount(failedCount(r)), formatCount(l.count)]
  })
  return renderTable(header, rows, 3)
}

export function serverSideTable (run: BenchRun): string | null {
  const rows: string[][] = []
  for (const s of run.steps) {
    if (s.kind !== 'load' || s.load === null) continue
    const b = s.serverSide
    const g = s.load.generator
    rows.push([
      s.label, s.server,
      b?.serverMs?.p50 === null || b?.serverMs?.p50 === undefined ? '-' : `~${b.serverMs.p50.toFixed(3)}`,
      b?.serverMs?.p99 === null || b?.serverMs?.p99 === undefined ? '-' : `~${b.serverMs.p99.toFixed(3)}`,
      b?.serverMs?.mean?.toFixed(3) ?? '-',
      b?.queueWaitMs?.mean?.toFixed(3) ?? '-',
      b?.inferenceMs?.mean?.toFixed(3) ?? '-',
      b?.batchSize?.mean?.toFixed(1) ?? '-',
      s.serverCpuPercent === null ? '-' : `${s.serverCpuPercent.toFixed(0)}%`,
      `${g.cpuPercent.toFixed(0)}%`,
      g.cpuUsPerRequest === null ? '-' : g.cpuUsPerRequest.toFixed(1),
      g.maxElu.toFixed(2),
    ])
  }
  if (rows.length === 0) return null
  return renderTable(['scenario', 'server', 'srv p50~', 'srv p99~', 'srv mean', 'queue mean', 'infer/batch', 'batch', 'srv CPU', 'gen CPU', 'gen us/req', 'gen ELU'], rows, 2)
}

export function floorTable (run: BenchRun): string | null {
  if (run.floor === null) return null
  const rows = run.floor.results.map((f) => [
    String(f.batchSize), formatCount(f.calls), f.callUs.p50 === null ? '-' : String(f.callUs.p50), f.callUs.p99 === null ? '-' : String(f.callUs.p99),
    f.perRowUsP50 === null ? '-' : f.perRowUsP50.toFixed(2), formatCount(f.rowsPerSec),
  ])
  return renderTable(['batch', 'calls', 'p50 us', 'p99 us', 'us/row (p50)', 'rows/s'], rows, 0)
}

export function crossCheckText (run: BenchRun): string | null {
  const c = run.crossCheck
  if (c === null) return null
  const pct = (x: number | null): string => (x === null ? '-' : `${((x - 1) * 100).toFixed(1)}%`)
  const rounds = (c.rounds ?? []).map((r, i) => [
    String(i + 1), formatCount(r.benchThroughput), formatCount(r.wrkThroughput), formatMs(r.benchP50Us), formatMs(r.wrkP50Us),
    r.wrkThroughput > 0 ? pct(r.benchThroughput / r.wrkThroughput) : '-',
  ])
  return [
    c.method ?? '',
    ...(rounds.length > 0 ? [renderTable(['round', 'bench req/s', 'wrk req/s', 'bench p50', 'wrk p50', 'req/s diff'], rounds, 0)] : []),
    `bench ${c.benchStep}: ${formatCount(c.bench.throughput)} req/s, p50 ${formatMs(c.bench.p50Us)} ms`,
    `wrk   ${c.wrkStep}: ${formatCount(c.wrk.throughput)} req/s, p50 ${formatMs(c.wrk.p50Us)} ms`,
    `bench vs wrk: throughput ${pct(c.throughputRatio)}, p50 ${pct(c.p50Ratio)} -> ` +
      `${c.agrees ? 'AGREE' : 'DISAGREE'} (tolerance ${(c.tolerance * 100).toFixed(0)}%)`,
  ].filter((l) => l.length > 0).join('\n')
}

/** Rate not kept, generator-bound threads, and failures by kind: said, never hidden. */
export function stepNotes (steps: readonly StepResult[]): string[] {
  const notes: string[] = []
  for (const s of steps) {
    if (s.load === null) continue
    const r = s.load
    if (r.spec.mode === 'open' && r.keptRate === false) {
      notes.push(`${s.id}: rate NOT kept: asked ${formatCount(r.spec.rate)}/s, sent ${formatCount(r.achievedRate)}/s, ` +
        `answered ${formatCount(r.throughput)}/s (${formatCount(r.generator.queuedForConnection)} requests waited for a free connection; ` +
        `latency still counts from their intended time)`)
    }
    if (r.generator.maxElu > 0.9) {
      notes.push(`${s.id}: a generator thread was ${(r.generator.maxElu * 100).toFixed(0)}% busy: the generator may have been the limit`)
    }
    const detail = failureDetail(r)
    if (detail !== '') notes.push(`${s.id}: failed requests: ${detail}`)
    if (r.counts.reconnects > 0 || r.counts.connectErrors > 0) {
      notes.push(`${s.id}: connections re-opened ${r.counts.reconnects} times, ${r.counts.connectErrors} connection attempts failed ` +
        '(closed by the server, or replaced after a timeout; refused; requests lost with them are counted above)')
    }
  }
  return notes
}

export function renderReport (run: BenchRun): string {
  const parts: string[] = []
  parts.push(`bench "${run.set}": ${run.description}`)
  parts.push(`machine: ${machineLine(run.machine)}`)
  parts.push(`load average before ${run.loadBefore.loadAverage.join(' ')}, after ${run.loadAfter.loadAverage.join(' ')}; ${run.pinning}`)
  parts.push(`command: ${run.command.join(' ')}`)
  parts.push('')
  parts.push('Client view (ms). open = constant rate, latency from the INTENDED send time (wrk2); closed = N in flight, latency')
  parts.push('from the actual send (a throughput test). cN = connections, dN = requests in flight per connection (/ws pipelining),')
  parts.push('xN = snapshots per request (batch). "!" after req/s: the asked rate was not kept. p95<10ms: the old service\'s target.')
  parts.push(mainTable(run))
  const server = serverSideTable(run)
  if (server !== null) {
    parts.push('')
    parts.push('Server view, from /metrics/prometheus before/after each load (ms; "~" = interpolated in buckets), and what each side used')
    parts.push('(CPU as % of one core; gen us/req = generator CPU per request; gen ELU = busiest generator thread\'s event-loop use).')
    parts.push(server)
  }
  const floor = floorTable(run)
  if (floor !== null) {
    parts.push('')
    parts.push(`Model-only floor: in-process session.run on ${run.floor!.modelVersion} (${run.floor!.features} features, ${run.floor!.rowsFrom}), one thread.`)
    parts.push(floor)
  }
  const across = acrossServersTable(run)
  if (across !== null) {
    parts.push('')
    parts.push('Same loads on each server of the set (ratios and deltas against the first server):')
    parts.push(across)
  }
  if (run.extra != null) {
    parts.push('')
    parts.push(run.extra.report)
  }
  const cross = crossCheckText(run)
  if (cross !== null) {
    parts.push('')
    parts.push('Cross-check against wrk (same server, same run, same request):')
    parts.push(cross)
  }
  if (run.notes.length > 0) {
    parts.push('')
    parts.push('Notes:')
    for (const n of run.notes) parts.push(`- ${n}`)
  }
  return parts.join('\n')
}

/**
 * For sets that load several servers the same way (batching on/off, workers 1/2/4, bare vs
 * server): per step, each server's figures beside the first server's, as ratios and p50 deltas.
 */
export function acrossServersTable (run: BenchRun): string | null {
  const servers = [...new Set(run.steps.filter((s) => s.kind === 'load').map((s) => s.server))]
  if (servers.length < 2) return null
  const byStep = new Map<string, StepResult[]>()
  for (const s of run.steps) {
    if (s.kind !== 'load' || s.load === null) continue
    let list = byStep.get(s.step)
    if (list === undefined) { list = []; byStep.set(s.step, list) }
    list.push(s)
  }
  const rows: string[][] = []
  for (const [step, list] of byStep) {
    if (list.length < 2) continue
    // The reference is the set's first server whatever order the step ran them in (ab alternates).
    list.sort((a, b) => servers.indexOf(a.server) - servers.indexOf(b.server))
    const base = list[0]!.load!
    for (const s of list) {
      const r = s.load!
      const dp50 = r.latencyUs.p50 !== null && base.latencyUs.p50 !== null ? r.latencyUs.p50 - base.latencyUs.p50 : null
      rows.push([
        step, s.server, formatCount(r.throughput), `x${base.throughput > 0 ? (r.throughput / base.throughput).toFixed(2) : '-'}`,
        formatMs(r.latencyUs.p50), dp50 === null ? '-' : `${dp50 >= 0 ? '+' : ''}${dp50} us`,
        formatMs(r.latencyUs.p99),
        r.latencyUs.p99 !== null && base.latencyUs.p99 !== null && base.latencyUs.p99 > 0 ? `x${(r.latencyUs.p99 / base.latencyUs.p99).toFixed(2)}` : '-',
      ])
    }
  }
  if (rows.length === 0) return null
  return renderTable(['step', 'server', 'req/s', `vs ${servers[0]}`, 'p50 ms', 'p50 delta', 'p99 ms', 'p99 ratio'], rows, 2)
}
