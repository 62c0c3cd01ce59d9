/**
 * The latency-versus-throughput chart, drawn from a run's results as a standalone SVG (no
 * dependencies, opens in any browser). One panel per sweep (a server config's open-loop steps at
 * increasing rates); all panels share both axes so configurations compare by eye. In a panel:
 * x = answered requests per second (linear), y = latency from the intended send time (log scale,
 * because the tail spans decades near saturation), one line per percentile, the old service's
 * p95 target as a dashed line, the closed-loop maximum of the same server as a vertical marker,
 * and hollow points where the generator could not keep the asked rate.
 */

import { machineLine } from './system-info.js'
import { formatCount } from './table.js'
import { kTargetP95Us, type BenchRun, type StepResult } from './results.js'

interface Series { readonly key: 'p50' | 'p90' | 'p99' | 'p999' | 'max', readonly label: string, readonly color: string, readonly dash: string | null, readonly width: number }

const kSeries: readonly Series[] = [
  { key: 'p50', label: 'p50', color: '#1f5fa8', dash: null, width: 2.5 },
  { key: 'p90', label: 'p90', color: '#2a9d8f', dash: null, width: 2 },
  { key: 'p99', label: 'p99', color: '#e07b00', dash: null, width: 2 },
  { key: 'p999', label: 'p99.9', color: '#c62828', dash: null, width: 2 },
  { key: 'max', label: 'max', color: '#9e9e9e', dash: '3 4', width: 1.5 },
]

interface Panel {
  readonly title: string
  readonly steps: readonly StepResult[]
  /** Closed-loop throughput of the same server and route, for the vertical marker. */
  readonly closedMax: { readonly throughput: number, readonly label: string } | null
}

const kPanelW = 600
const kPanelH = 420
const kMargin = { top: 76, right: 28, bottom: 84, left: 76 }
/** Room for the title block above the first row of panels, grown by the wrapped header lines. */
const kHeaderLineH = 16
const kGap = 36

function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function panelsOf (run: BenchRun): Panel[] {
  const bySweep = new Map<string, StepResult[]>()
  for (const s of run.steps) {
    if (s.sweep === null || s.load === null) continue
    const key = `${s.sweep}@${s.server}`
    let list = bySweep.get(key)
    if (list === undefined) { list = []; bySweep.set(key, list) }
    list.push(s)
  }
  const panels: Panel[] = []
  for (const steps of bySweep.values()) {
    const first = steps[0]!.load!.spec
    const closed = run.steps
      .filter((s) => s.server === steps[0]!.server && s.load !== null && s.load.spec.mode === 'closed' &&
        s.load.spec.transport === first.transport && s.load.spec.path === first.path && s.load.spec.rowsPerRequest === first.rowsPerRequest)
      .sort((a, b) => b.load!.throughput - a.load!.throughput)[0]
    const route = first.transport === 'http' ? first.path : `/ws ${first.transport === 'ws-binary' ? 'FlatBuffers' : 'JSON'}${first.pipeline > 1 ? ` (up to ${first.pipeline} in flight)` : ''}`
    panels.push({
      title: `${steps[0]!.server}: ${route}, open loop, ${first.connections} connection${first.connections > 1 ? 's' : ''}`,
      steps: [...steps].sort((a, b) => a.load!.throughput - b.load!.throughput),
      closedMax: closed === undefined ? null : { throughput: closed.load!.throughput, label: `closed-loop max (c${closed.load!.spec.connections})` },
    })
  }
  return panels
}

function wrap (text: string, maxChars: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line.length > 0 && line.length + 1 + word.length > maxChars) { lines.push(line); line = word } else line = line.length === 0 ? word : `${line} ${word}`
  }
  if (line.length > 0) lines.push(line)
  return lines
}

function niceStep (range: number, ticks: number): number {
  const raw = range / ticks
  const mag = 10 ** Math.floor(Math.log10(raw))
  const norm = raw / mag
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag
}

function msLabel (ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`
  if (ms >= 1) return `${ms} ms`
  return `${ms} ms`
}

/** The SVG text, or null when the run has no sweep to draw. */
export function renderChart (run: BenchRun): string | null {
  const panels = panelsOf(run)
  if (panels.length === 0) return null

  // Shared axes.
  let maxX = 0
  let minY = Infinity
  let maxY = 0
  for (const p of panels) {
    if (p.closedMax !== null) maxX = Math.max(maxX, p.closedMax.throughput)
    for (const s of p.steps) {
      const l = s.load!.latencyUs
      maxX = Math.max(maxX, s.load!.throughput, s.load!.spec.rate ?? 0)
      for (const series of kSeries) {
        const v = l[series.key]
        if (v !== null && v > 0) { minY = Math.min(minY, v / 1000); maxY = Math.max(maxY, v / 1000) }
      }
    }
  }
  if (!Number.isFinite(minY)) { minY = 0.1; maxY = 10 }
  const targetMs = kTargetP95Us / 1000
  const yLo = 10 ** Math.floor(Math.log10(minY))
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(maxY, targetMs * 2)))
  const xStep = niceStep(maxX * 1.05, 5)
  const xHi = Math.ceil((maxX * 1.05) / xStep) * xStep

  const cols = Math.min(panels.length, 3)
  const rows = Math.ceil(panels.length / cols)
  const width = cols * (kPanelW + kMargin.left + kMargin.right) + (cols - 1) * kGap
  // ~6.8 px per character at 12 px sans-serif: wrap the header to the picture's width.
  const header = wrap(`${machineLine(run.machine)}. ${run.startedAt}; load average before ${run.loadBefore.loadAverage.join(' ')}, ` +
    `after ${run.loadAfter.loadAverage.join(' ')}; ${run.pinning}.`, Math.floor((width - 32) / 6.8))
  const top = 40 + header.length * kHeaderLineH
  const height = top + rows * (kPanelH + kMargin.top + kMargin.bottom)

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="26" font-size="17" font-weight="bold" fill="#222">Latency vs throughput, ml-prediction-server (bench set "${esc(run.set)}")</text>`)
  header.forEach((line, k) => { out.push(`<text x="16" y="${46 + k * kHeaderLineH}" fill="#555">${esc(line)}</text>`) })

  panels.forEach((panel, i) => {
    const ox = (i % cols) * (kPanelW + kMargin.left + kMargin.right + kGap) + kMargin.left
    const oy = top + Math.floor(i / cols) * (kPanelH + kMargin.top + kMargin.bottom) + kMargin.top - 30
    const x = (v: number): number => ox + (v / xHi) * kPanelW
    const y = (ms: number): number => oy + kPanelH - ((Math.log10(ms) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * kPanelH
    out.push('<g>')
    out.push(`<text x="${ox}" y="${oy - 14}" font-size="14" font-weight="bold" fill="#222">${esc(panel.title)}</text>`)
    out.push(`<rect x="${ox}" y="${oy}" width="${kPanelW}" height="${kPanelH}" fill="#fafafa" stroke="#bbb"/>`)
    // y grid: decades labelled, 2 and 5 faint.
    for (let d = yLo; d <= yHi * 1.0001; d *= 10) {
      out.push(`<line x1="${ox}" x2="${ox + kPanelW}" y1="${y(d).toFixed(1)}" y2="${y(d).toFixed(1)}" stroke="#d0d0d0"/>`)
      out.push(`<text x="${ox - 8}" y="${(y(d) + 4).toFixed(1)}" text-anchor="end" fill="#333">${msLabel(Number(d.toPrecision(1)))}</text>`)
      for (const m of [2, 5]) {
        const v = d * m
        if (v < yHi) {
          out.push(`<line x1="${ox}" x2="${ox + kPanelW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ececec"/>`)
          out.push(`<text x="${ox - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#999" font-size="10">${m}</text>`)
        }
      }
    }
    // x grid.
    for (let v = 0; v <= xHi + 1e-9; v += xStep) {
      out.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${oy}" y2="${oy + kPanelH}" stroke="#e4e4e4"/>`)
      out.push(`<text x="${x(v).toFixed(1)}" y="${oy + kPanelH + 18}" text-anchor="middle" fill="#333">${formatCount(v)}</text>`)
    }
    out.push(`<text x="${ox + kPanelW / 2}" y="${oy + kPanelH + 40}" text-anchor="middle" fill="#222">answered requests per second (2xx)</text>`)
    out.push(`<text transform="translate(${ox - 58} ${oy + kPanelH / 2}) rotate(-90)" text-anchor="middle" fill="#222">latency from intended send (log scale)</text>`)
    // Target line.
    if (targetMs >= yLo && targetMs <= yHi) {
      out.push(`<line x1="${ox}" x2="${ox + kPanelW}" y1="${y(targetMs).toFixed(1)}" y2="${y(targetMs).toFixed(1)}" stroke="#6a1b9a" stroke-width="1.5" stroke-dasharray="8 5"/>`)
      out.push(`<text x="${ox + 6}" y="${(y(targetMs) - 6).toFixed(1)}" fill="#6a1b9a">old service target: p95 under ${targetMs} ms</text>`)
    }
    // Closed-loop maximum.
    if (panel.closedMax !== null) {
      const cx = x(panel.closedMax.throughput).toFixed(1)
      out.push(`<line x1="${cx}" x2="${cx}" y1="${oy}" y2="${oy + kPanelH}" stroke="#555" stroke-dasharray="2 4"/>`)
      out.push(`<text x="${Number(cx) - 6}" y="${oy + 14}" text-anchor="end" fill="#555">${esc(panel.closedMax.label)}: ${formatCount(panel.closedMax.throughput)}/s</text>`)
    }
    // Series.
    for (const series of kSeries) {
      const pts = panel.steps
        .map((s) => ({ s, v: s.load!.latencyUs[series.key] }))
        .filter((p): p is { s: StepResult, v: number } => p.v !== null && p.v > 0)
      if (pts.length === 0) continue
      const path = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.s.load!.throughput).toFixed(1)},${y(p.v / 1000).toFixed(1)}`).join(' ')
      out.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="${series.width}"${series.dash === null ? '' : ` stroke-dasharray="${series.dash}"`} stroke-linejoin="round"/>`)
      for (const p of pts) {
        const r = p.s.load!
        const kept = r.keptRate !== false
        const tip = `${series.label} ${(p.v / 1000).toFixed(3)} ms at ${formatCount(r.throughput)} req/s answered ` +
          `(asked ${formatCount(r.spec.rate)}/s${kept ? '' : ', rate NOT kept'})`
        out.push(`<circle cx="${x(r.throughput).toFixed(1)}" cy="${y(p.v / 1000).toFixed(1)}" r="${series.key === 'max' ? 2.5 : 3.5}" ` +
          `fill="${kept ? series.color : '#ffffff'}" stroke="${series.color}" stroke-width="1.5"><title>${esc(tip)}</title></circle>`)
      }
    }
    // Label the last point of the p99 line where the rate was not kept.
    for (const s of panel.steps) {
      if (s.load!.keptRate === false && s.load!.latencyUs.p99 !== null) {
        out.push(`<text x="${(x(s.load!.throughput) - 6).toFixed(1)}" y="${(y(s.load!.latencyUs.p99 / 1000) + 18).toFixed(1)}" text-anchor="end" fill="#c62828" font-size="11">` +
          `asked ${formatCount(s.load!.spec.rate)}/s: not kept (hollow)</text>`)
      }
    }
    // Legend.
    let lx = ox
    const ly = oy + kPanelH + 64
    for (const series of kSeries) {
      out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${series.color}" stroke-width="${series.width + 0.5}"${series.dash === null ? '' : ` stroke-dasharray="${series.dash}"`}/>`)
      out.push(`<text x="${lx + 28}" y="${ly + 4}" fill="#222">${series.label}</text>`)
      lx += 78
    }
    out.push(`<text x="${lx + 8}" y="${ly + 4}" fill="#666" font-size="11">one point per constant-rate step</text>`)
    out.push('</g>')
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
