/**
 * A model set whose widest member has several workers keeps several batches in flight at once; a
 * narrower member queues its part of each. Every request must still get its own members' answers:
 * under concurrent load from several symbols, each answer equals the one the same request gets
 * alone. (Found by `npm run bench -- --set phase2`: with the CNN member at 2 or 4 workers the set
 * answered some requests 500 and, silently, others with another batch's CNN probability, because
 * each member had one answer buffer shared by every batch in flight.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { copyShippedModels } from '../helpers/model-fixtures.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kTree = 'xgboost_phase1_v2_calibrated'
const kCnn = 'gaf_cnn_phase2_v1'
const kBarMs = 60_000
const kBars = 40
const kSymbols = ['AAAUSDT', 'BBBUSDT', 'CCCUSDT', 'DDDUSDT']

function setFolder (cnnWorkers: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'set-concurrent-'))
  copyShippedModels(dir, [kTree, kCnn])
  writeFileSync(join(dir, 'pair.set.json'), JSON.stringify({
    set_version: 'pair_test',
    combiner: 'weighted_mean',
    members: [{ model: `${kTree}.onnx`, weight: 0.7, workers: 1 }, { model: `${kCnn}.onnx`, weight: 0.3, workers: cnnWorkers }],
  }))
  return dir
}

/** Symbol s's bar k: a different wave per symbol, so the CNN's answers differ between symbols. */
function snapshot (s: number, k: number, firstBarMs: number, inBarMs = 0): Record<string, unknown> {
  return {
    symbol: kSymbols[s],
    price: 100 + (s + 1) * Math.sin(k * (0.3 + 0.2 * s)) + 0.05 * s * k,
    btc_price: 95_000 + 40 * Math.cos(k / (2 + s)),
    volume: 1000 + 10 * s,
    bid_volume: 800,
    ask_volume: 600,
    timestamp_ms: firstBarMs + k * kBarMs + inBarMs,
  }
}

t.test('a set with a 2-worker CNN answers each request with its own members\' answers under concurrent load', async (t) => {
  const dir = setFolder(2)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const { url } = await startServer(t, { model_path: join(dir, 'pair.set.json'), max_batch_size: 16 })
  const firstBarMs = (Math.floor(Date.now() / kBarMs) - kBars - 1) * kBarMs
  for (let s = 0; s < kSymbols.length; s++) {
    for (let k = 0; k < kBars; k++) {
      const r = await postJson(`${url}/predict`, snapshot(s, k, firstBarMs))
      t.equal(r.status, 200, `warm ${kSymbols[s]} bar ${k}`, { diagnostic: r.status !== 200 })
      if (r.status !== 200) return
    }
  }
  // Alone: one request at a time, each falling into its symbol's last bar (repeats change nothing).
  const bodies = kSymbols.map((_, s) => JSON.stringify(snapshot(s, kBars - 1, firstBarMs, 1000)))
  const alone: number[] = []
  for (let s = 0; s < kSymbols.length; s++) {
    const r = await postJson(`${url}/predict`, bodies[s], true)
    t.equal(r.status, 200)
    alone.push(r.body.probability_long as number)
  }
  t.equal(new Set(alone).size, kSymbols.length, 'the symbols get different answers, so a mix-up would show')
  const before = (await getJson(`${url}/metrics?format=json`)).body.model_set.members as Array<{ model_version: string, rows_used: number }>

  // Together: 32 requests in flight, symbols interleaved, for at most 2 s.
  const deadline = performance.now() + 2000
  let answered = 0
  const wrong: string[] = []
  await Promise.all(Array.from({ length: 32 }, async (_, c) => {
    for (let i = c; performance.now() < deadline; i++) {
      const s = i % kSymbols.length
      const r = await postJson(`${url}/predict`, bodies[s], true)
      answered++
      if (r.status !== 200) wrong.push(`${kSymbols[s]}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
      else if (Math.abs((r.body.probability_long as number) - alone[s]!) > 1e-6) wrong.push(`${kSymbols[s]}: ${r.body.probability_long} instead of ${alone[s]}`)
    }
  }))
  t.ok(answered > 100, `enough concurrent answers to overlap batches (${answered})`)
  t.same(wrong.slice(0, 10), [], `every concurrent answer equals the request's answer alone (${wrong.length} of ${answered} differ)`)
  const after = (await getJson(`${url}/metrics?format=json`)).body.model_set.members as Array<{ model_version: string, rows_used: number }>
  const cnnRows = after.find(m => m.model_version === kCnn)!.rows_used - before.find(m => m.model_version === kCnn)!.rows_used
  t.equal(cnnRows, answered, 'the CNN answered every row of the concurrent load')
})
