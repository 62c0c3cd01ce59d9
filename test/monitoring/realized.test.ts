/**
 * Realized outcomes and capture, end to end over real HTTP and /ws with timestamps: a scripted
 * sequence of bars with known closes (a tie and a gap among them) gives exactly the hit rates,
 * coverage and Brier score computed here by hand from the closes and the probabilities the server
 * answered; the capture files hold every closed bar, and replaying them gives back the feature
 * rows the server computed.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { listCaptureFiles, readCaptureFiles } from '../../src/features/capture-file.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { SymbolState } from '../../src/features/symbol-state.js'
import { replayCandles } from '../../src/cli/replay.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from '../ws/ws-test-client.js'

const kBarMs = 60_000
const kBar0 = Math.floor((Date.now() - 3 * 3_600_000) / kBarMs) * kBarMs
const kThreshold = 0.52
const kWindow = 10
const kModelPath = 'models/xgboost_phase1_v2_calibrated.onnx' // the serving default, also as the shadow: both scorecards see the same predictions

interface Tick { bar: number, price: number, book: boolean }

/**
 * One symbol's script: closes of bars 0..n-1 with bar 7 a tie of bar 6 and bars 20-21 missing (a
 * gap: bar 19 gets no label), two or three ticks in some bars (the last one is the bar's).
 */
function script (n: number, start: number): Tick[] {
  const ticks: Tick[] = []
  let price = start
  for (let bar = 0; bar < n; bar++) {
    if (bar === 20 || bar === 21) continue
    const step = bar === 7 ? 0 : Math.sin(bar * 1.7 + start) * 0.004
    if (bar % 5 === 2) ticks.push({ bar, price: price * (1 + step / 2), book: false })
    price = price * (1 + step)
    ticks.push({ bar, price, book: bar % 3 !== 0 })
  }
  return ticks
}

function requestOf (symbol: string, tick: Tick, i: number): Record<string, number | string> {
  const p = tick.price
  return {
    symbol,
    price: p,
    volume: 1000 + (i % 7) * 50,
    btc_price: 62_000 * (1 + Math.cos(tick.bar) * 0.001),
    timestamp_ms: kBar0 + tick.bar * kBarMs + 1000 + (i % 3) * 1000,
    ...(tick.book ? { bid_volume: 120 + i, ask_volume: 100, best_bid: p * 0.9999, best_ask: p * 1.0001 } : {}),
  }
}

/** What the test computes itself: per bar, the last tick's request and the answered probability. */
interface Bar { bar: number, close: number, p: number, row: Float32Array }

function applyLocally (state: SymbolState, req: Record<string, number | string>, row: Float32Array): void {
  const s = new MarketSnapshot()
  s.price = req.price as number
  s.volume = req.volume as number
  s.btcPrice = req.btc_price as number
  s.timestampMs = req.timestamp_ms as number
  if (req.bid_volume !== undefined) {
    s.bidVolume = req.bid_volume as number; s.askVolume = req.ask_volume as number
    s.bestBid = req.best_bid as number; s.bestAsk = req.best_ask as number
  }
  state.apply(s, s.timestampMs, row, 0)
}

function sameRow (t: Test, got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const bad: string[] = []
  for (let k = 0; k < kFeatureCount; k++) {
    const a = got[k]!; const b = want[k]!
    if (!(a === b || (a !== a && b !== b))) bad.push(`${k}: ${a} vs ${b}`)
  }
  t.strictSame(bad, [], what)
}

t.test('scripted bars over HTTP and /ws: exact realized figures; capture replays into the served rows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'capture-'))
  const { server, url } = await startServer(t, {
    capture_dir: dir, evaluation_threshold: kThreshold, evaluation_window: kWindow, shadow_model_path: kModelPath,
  })
  const bars = new Map<string, Bar[]>()
  const order: Array<[string, number]> = [] // (symbol, bar) in the order bars closed on the server

  const run = async (symbol: string, send: (req: Record<string, number | string>) => Promise<number>, ticks: Tick[]): Promise<void> => {
    const state = new SymbolState(kBarMs, 5)
    const row = new Float32Array(kFeatureCount)
    const list: Bar[] = []
    for (let i = 0; i < ticks.length; i++) {
      const req = requestOf(symbol, ticks[i]!, i)
      const last = list[list.length - 1]
      if (last !== undefined && last.bar !== ticks[i]!.bar) order.push([symbol, last.bar])
      applyLocally(state, req, row)
      const p = await send(req)
      if (last !== undefined && last.bar === ticks[i]!.bar) { last.close = req.price as number; last.p = p; last.row = row.slice() } else list.push({ bar: ticks[i]!.bar, close: req.price as number, p, row: row.slice() })
    }
    bars.set(symbol, list)
  }

  await run('HTTPSYM', async (req) => {
    const res = await postJson(`${url}/predict`, req)
    t.equal(res.status, 200)
    return res.body.probability_long as number
  }, script(40, 600))

  const ws = await RawWs.open(wsUrl(url))
  t.match(await ws.next(), { kind: 'hello' })
  let id = 0
  await run('WSSYM', async (req) => {
    ws.send(JSON.stringify({ ...req, id: ++id }))
    const m = await ws.next() as any
    t.match(m, { kind: 'prediction', id })
    return m.prediction.probability_long as number
  }, script(35, 31))
  ws.close()

  // The shadow candidate answers on its own pool: give it a moment, then close the server (drain,
  // closed bars still waiting for their label are written, files flushed).
  await new Promise(resolve => setTimeout(resolve, 300))
  const metrics = (await getJson(`${url}/metrics`)).body
  await server.close()

  // Exact probabilities: the capture holds them as computed (the answers are rounded to 6 places).
  const files = listCaptureFiles(dir)
  t.ok(files.length >= 1, 'capture files written')
  const exact = new Map<string, Map<number, number>>()
  // The shadow's probability of each bar, NaN where it had not answered the bar's last request by
  // the time the bar was scored (its own one-worker pool can lag on a loaded machine).
  const exactShadow = new Map<string, Map<number, number>>()
  for (const [symbol, list] of bars) {
    const cap = readCaptureFiles(files, symbol)
    // Every bar but the last (still open at shutdown) was captured.
    t.strictSame([...cap.openTimeMs], list.slice(0, -1).map(b => kBar0 + b.bar * kBarMs), `${symbol}: every closed bar captured, in order`)
    const m = new Map<number, number>()
    const ms = new Map<number, number>()
    for (let r = 0; r < cap.length; r++) {
      const b = list[r]!
      t.equal(cap.close[r], b.close)
      t.ok(Math.abs(cap.pServing[r]! - b.p) <= 5e-7, `${symbol} bar ${b.bar}: captured p is the answered one`)
      const shadowP = cap.pShadow[r]!
      if (shadowP === shadowP) t.equal(shadowP, cap.pServing[r], 'shadow (same model), when it answered the same request, captured beside it')
      ms.set(b.bar, shadowP)
      m.set(b.bar, cap.pServing[r]!)
      sameRow(t, cap.features.subarray(r * kFeatureCount, (r + 1) * kFeatureCount), b.row, `${symbol} bar ${b.bar}: captured row = the row of the bar's last request`)
    }
    exact.set(symbol, m)
    exactShadow.set(symbol, ms)
    // The replay of the capture computes the same rows (order book, BTC and funding from the file).
    let replayed = 0
    replayCandles({ candles: cap, btc: null, funding: null, barMs: kBarMs, maxGapBars: 5, captured: cap, everyRow: true }, (_t, features, _label, _state, i) => {
      sameRow(t, features, cap.features.subarray(i * kFeatureCount, (i + 1) * kFeatureCount), `${symbol} row ${i}: replay = capture`)
      replayed++
    })
    t.equal(replayed, cap.length)
  }

  // Expected figures, by hand: bar k is labelled by bar k+1 when k+1 follows it and has closed.
  const scored: Array<{ p: number, y: number }> = []
  const scoredShadow: Array<{ p: number, y: number }> = []
  let ties = 0; let gaps = 0; let shadowTies = 0
  for (const [symbol, closedBar] of order) {
    const list = bars.get(symbol)!
    const k = list.findIndex(b => b.bar === closedBar)
    if (k === 0) continue
    const prev = list[k - 1]!; const cur = list[k]!
    if (cur.bar !== prev.bar + 1) { gaps++; continue }
    const shadowP = exactShadow.get(symbol)!.get(prev.bar)!
    if (cur.close === prev.close) {
      ties++
      if (shadowP === shadowP) shadowTies++
      continue
    }
    scored.push({ p: exact.get(symbol)!.get(prev.bar)!, y: cur.close > prev.close ? 1 : 0 })
    if (shadowP === shadowP) scoredShadow.push({ p: shadowP, y: cur.close > prev.close ? 1 : 0 })
  }
  t.equal(ties, 2, 'the script has one tie per symbol')
  t.equal(gaps, 2, 'and one gap per symbol')
  const expect = (set: Array<{ p: number, y: number }>): Record<string, number> => {
    const hits = set.filter(s => (s.p >= 0.5) === (s.y === 1))
    const covered = set.filter(s => Math.max(s.p, 1 - s.p) >= kThreshold)
    const coveredHits = covered.filter(s => (s.p >= 0.5) === (s.y === 1))
    let brier = 0
    for (const s of set) brier += (s.p - s.y) * (s.p - s.y)
    return {
      labelled_bars: set.length,
      hit_rate: hits.length / set.length,
      covered_bars: covered.length,
      coverage: covered.length / set.length,
      hit_rate_at_threshold: covered.length === 0 ? Number.NaN : coveredHits.length / covered.length,
      brier: brier / set.length,
    }
  }
  const realized = metrics.realized
  t.equal(realized.evaluation_threshold, kThreshold)
  t.match(realized.bars, { labelled: scored.length, ties: 2, unlabelled_gap: 2, without_prediction: 0 })
  t.ok(scoredShadow.length > scored.length / 2, `the shadow answered most bars' last request (${scoredShadow.length} of ${scored.length})`)
  for (const role of ['serving', 'shadow']) {
    const card = realized.models.find((m: any) => m.role === role)
    t.ok(card, `${role} scorecard`)
    t.equal(card.model_version, 'xgboost_phase1_v2_calibrated')
    t.equal(card.ties, role === 'serving' ? 2 : shadowTies)
    const roleScored = role === 'serving' ? scored : scoredShadow
    for (const [which, set] of [['lifetime', roleScored], ['window', roleScored.slice(-kWindow)]] as const) {
      const want = expect(set)
      const got = card[which]
      for (const key of Object.keys(want)) {
        if (Number.isNaN(want[key])) t.equal(got[key], null, `${role} ${which} ${key}`)
        else t.ok(Math.abs(got[key] - want[key]!) < 1e-12, `${role} ${which} ${key}: ${got[key]} = ${want[key]}`)
      }
      const h = want.hit_rate!
      t.ok(Math.abs(got.hit_rate_se - Math.sqrt(h * (1 - h) / set.length)) < 1e-12, `${role} ${which} hit_rate_se`)
    }
  }
  t.ok(scored.length > kWindow, 'the window is shorter than the lifetime')
})
