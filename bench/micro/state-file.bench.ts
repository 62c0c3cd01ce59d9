/**
 * Cost of the feature state file (src/features/state-file.ts) at max_symbols = 10,000, every
 * symbol with full windows (70 bars: each ring has wrapped): wall and CPU ms of a save and of a
 * load, the longest event-loop turn during a save (what a request arriving meanwhile can wait),
 * and the file size. Repeated; prints every run and the median.
 *
 *   npx tsx bench/micro/state-file.bench.ts [--symbols 10000] [--runs 5] [--dir /tmp]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { FeatureStore } from '../../src/features/feature-store.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { loadFeatureState, saveFeatureState } from '../../src/features/state-file.js'

const { values: args } = parseArgs({
  options: { symbols: { type: 'string', default: '10000' }, runs: { type: 'string', default: '5' }, dir: { type: 'string', default: os.tmpdir() } },
})
const kSymbolCount = Number(args.symbols)
const kRuns = Number(args.runs)
const kBarMs = 60_000
const kBars = 70
const kFirstBar = 29_000_000

function filledStore (): FeatureStore {
  const store = new FeatureStore({ barMs: kBarMs, maxGapBars: 5, maxSymbols: kSymbolCount })
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  let seed = 42
  const random = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296 }
  for (let i = 0; i < kSymbolCount; i++) {
    let price = 10 + random() * 1000
    for (let b = 0; b < kBars; b++) {
      s.reset()
      price *= Math.exp((random() - 0.5) * 0.01)
      s.price = price; s.volume = random() * 100; s.btcPrice = 60_000 + random() * 100
      s.timestampMs = (kFirstBar + b) * kBarMs
      store.apply(`SYM${i}`, s, 0, row, 0)
    }
  }
  return store
}

/** Longest gap between event-loop turns while `work` runs: a setImmediate chain timestamps each turn. */
async function longestTurn<T> (work: () => Promise<T>): Promise<{ result: T, longestMs: number }> {
  let longestMs = 0
  let last = performance.now()
  let running = true
  const tick = (): void => {
    const now = performance.now()
    if (now - last > longestMs) longestMs = now - last
    last = now
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  const result = await work()
  running = false
  return { result, longestMs }
}

function cpuMs (start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1000
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const dir = mkdtempSync(join(args.dir, 'state-bench-'))
const path = join(dir, 'state.bin')
const now = (kFirstBar + kBars - 1) * kBarMs
const store = filledStore()
const rows: Array<Record<string, number>> = []
for (let run = 0; run < kRuns; run++) {
  let cpu = process.cpuUsage()
  const { result: saved, longestMs } = await longestTurn(() => saveFeatureState(store, path, now))
  const saveCpu = cpuMs(cpu)
  const into = new FeatureStore({ barMs: kBarMs, maxGapBars: 5, maxSymbols: kSymbolCount })
  cpu = process.cpuUsage()
  const loaded = await loadFeatureState(into, path, now)
  const loadCpu = cpuMs(cpu)
  if (loaded?.restored !== kSymbolCount) throw new Error(`restored ${loaded?.restored}`)
  const row = { save_ms: saved.ms, save_cpu_ms: saveCpu, save_longest_turn_ms: longestMs, load_ms: loaded.ms, load_cpu_ms: loadCpu, bytes: saved.bytes }
  rows.push(row)
  console.log(`run ${run + 1}: ` + Object.entries(row).map(([k, v]) => `${k}=${k === 'bytes' ? v : v.toFixed(1)}`).join(' '))
}
const keys = Object.keys(rows[0]!)
console.log('median: ' + keys.map((k) => `${k}=${k === 'bytes' ? median(rows.map((r) => r[k]!)) : median(rows.map((r) => r[k]!)).toFixed(1)}`).join(' '))
console.log(`${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${kSymbolCount} symbols`)
rmSync(dir, { recursive: true, force: true })
