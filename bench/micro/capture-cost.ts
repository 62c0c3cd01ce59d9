/**
 * Cost of capture when every request closes a bar (the worst case: capture_dir's per-bar work on
 * every request), against the same build without capture_dir. Real server in this process,
 * /predict/batch over loopback, 500 symbols per batch, each batch one bar later; rounds alternate.
 *
 *   node --import tsx bench/micro/capture-cost.ts
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { configFromSettings } from '../../src/config/load.js'
import { createLogger } from '../../src/log/logger.js'
import { PredictionServer } from '../../src/server/app.js'

const kSymbols = 500
const kBatches = 200
const kRounds = 3

async function run (captureDir: string | null): Promise<{ ms: number, rows: number, dropped: number }> {
  const config = configFromSettings({ host: '127.0.0.1', port: 0, workers: 2, warmup_runs: 2, log_level: 'silent', deadline_ms: 60_000, capture_dir: captureDir })
  const server = await PredictionServer.start(config, createLogger(config.logLevel, null))
  const url = `http://127.0.0.1:${server.port}/predict/batch`
  const bar0 = Math.floor((Date.now() - (kBatches + 10) * 60_000) / 60_000) * 60_000
  const bodies = []
  for (let b = 0; b < kBatches; b++) {
    const requests = []
    for (let s = 0; s < kSymbols; s++) requests.push({ symbol: `S${s}`, price: 100 + Math.sin(b + s), volume: 10 + b, timestamp_ms: bar0 + b * 60_000, bid_volume: 5, ask_volume: 4, best_bid: 99.9, best_ask: 100.1 })
    bodies.push(JSON.stringify({ requests }))
  }
  const started = performance.now()
  for (const body of bodies) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    if (res.status !== 200) throw new Error(`status ${res.status}`)
    await res.arrayBuffer()
  }
  const ms = performance.now() - started
  const dropped = server.monitor.capture?.rowsDropped ?? 0
  await server.close()
  return { ms, rows: kSymbols * kBatches, dropped }
}

const dir = mkdtempSync(join(tmpdir(), 'capture-cost-'))
for (let round = 1; round <= kRounds; round++) {
  for (const capture of round % 2 === 1 ? [false, true] : [true, false]) {
    const { ms, rows, dropped } = await run(capture ? join(dir, `r${round}`) : null)
    let bytes = 0
    if (capture) for (const f of readdirSync(join(dir, `r${round}`))) bytes += statSync(join(dir, `r${round}`, f)).size
    process.stdout.write(`round ${round} capture ${capture ? 'on ' : 'off'}: ${rows} requests (each closes a bar) in ${ms.toFixed(0)} ms = ${(rows / ms * 1000).toFixed(0)} req/s${capture ? `, ${bytes} bytes captured, ${dropped} rows dropped` : ''}\n`)
  }
}
