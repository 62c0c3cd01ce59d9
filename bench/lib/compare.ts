/**
 * `--compare previous.json`: this run against an earlier one, step by step (matched by id), as
 * ratios now/before (fastify's branchcmp; undici's "difference with slowest" column). For
 * throughput above 1 is better; for latency below 1 is better. Steps present in only one run are
 * listed, not silently dropped. Also compares the model-only floor by batch size.
 */

import { readFileSync } from 'node:fs'
import { formatCount, formatMs, renderTable } from './table.js'
import { kResultSchema, type BenchRun, type StepResult } from './results.js'

export function readRun (path: string): BenchRun {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as BenchRun
  if (parsed.schema !== kResultSchema) throw new Error(`${path} is not a bench result (schema ${String(parsed.schema)}, expected ${kResultSchema})`)
  return parsed
}

interface Figures { readonly throughput: number | null, readonly p50: number | null, readonly p99: number | null, readonly p999: number | null }

function figures (s: StepResult): Figures {
  if (s.load !== null) {
    const l = s.load.latencyUs
    return { throughput: s.load.throughput, p50: l.p50, p99: l.p99, p999: l.p999 }
  }
  if (s.wrk !== null) return { throughput: s.wrk.requestsPerSec, p50: s.wrk.latencyUs.p50, p99: s.wrk.latencyUs.p99, p999: null }
  return { throughput: null, p50: null, p99: null, p999: null }
}

export function ratio (now: number | null, before: number | null): number | null {
  if (now === null || before === null || before === 0) return null
  return now / before
}

function ratioCell (r: number | null): string {
  return r === null ? '-' : `x${r.toFixed(2)}`
}

export interface ComparisonRow {
  readonly id: string
  readonly throughput: number | null
  readonly p50: number | null
  readonly p99: number | null
  readonly p999: number | null
}

export function compareRuns (now: BenchRun, before: BenchRun): { rows: ComparisonRow[], onlyNow: string[], onlyBefore: string[] } {
  const previous = new Map(before.steps.map((s) => [s.id, s]))
  const rows: ComparisonRow[] = []
  const onlyNow: string[] = []
  for (const s of now.steps) {
    const p = previous.get(s.id)
    if (p === undefined) { onlyNow.push(s.id); continue }
    const a = figures(s)
    const b = figures(p)
    rows.push({ id: s.id, throughput: ratio(a.throughput, b.throughput), p50: ratio(a.p50, b.p50), p99: ratio(a.p99, b.p99), p999: ratio(a.p999, b.p999) })
  }
  const ids = new Set(now.steps.map((s) => s.id))
  const onlyBefore = before.steps.filter((s) => !ids.has(s.id)).map((s) => s.id)
  return { rows, onlyNow, onlyBefore }
}

export function renderComparison (now: BenchRun, before: BenchRun, beforePath: string): string {
  const { rows, onlyNow, onlyBefore } = compareRuns(now, before)
  const previous = new Map(before.steps.map((s) => [s.id, s]))
  const lines: string[] = []
  lines.push(`Compared with ${beforePath} (${before.startedAt}, commit ${before.machine.git.commit?.slice(0, 10) ?? '?'}${before.machine.git.dirty === true ? '+local' : ''}, ` +
    `load avg ${before.loadBefore.loadAverage.join(' ')}): ratio = now / before; req/s above x1 is better, latency below x1 is better.`)
  const table = rows.map((r) => {
    const s = now.steps.find((x) => x.id === r.id)!
    const p = previous.get(r.id)!
    return [r.id, `${formatCount(figures(p).throughput)} -> ${formatCount(figures(s).throughput)}`, ratioCell(r.throughput),
      `${formatMs(figures(p).p50)} -> ${formatMs(figures(s).p50)}`, ratioCell(r.p50), ratioCell(r.p99), ratioCell(r.p999)]
  })
  lines.push(renderTable(['step', 'req/s before -> now', 'req/s', 'p50 ms before -> now', 'p50', 'p99', 'p99.9'], table, 1))
  if (now.floor !== null && before.floor !== null) {
    const prevFloor = new Map(before.floor.results.map((f) => [f.batchSize, f]))
    const floorRows = now.floor.results.flatMap((f) => {
      const p = prevFloor.get(f.batchSize)
      return p === undefined ? [] : [[`floor batch ${f.batchSize}`, ratioCell(ratio(f.callUs.p50, p.callUs.p50)), ratioCell(ratio(f.rowsPerSec, p.rowsPerSec))]]
    })
    if (floorRows.length > 0) lines.push(renderTable(['model floor', 'p50 call', 'rows/s'], floorRows, 1))
  }
  if (onlyNow.length > 0) lines.push(`only in this run: ${onlyNow.join(', ')}`)
  if (onlyBefore.length > 0) lines.push(`only in ${beforePath}: ${onlyBefore.join(', ')}`)
  return lines.join('\n')
}
