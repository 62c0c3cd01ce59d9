/**
 * Issue 10 item 7, over real HTTP: a server stopped mid-sequence and started again from its
 * state_file answers the rest of the sequence exactly as a server that never stopped; the save
 * comes after the drain, so requests admitted when the stop began are in it; a corrupt or foreign
 * file is refused with one log line and the server starts with no history.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { configFromSettings } from '../../src/config/load.js'
import type { RawSettings } from '../../src/config/schema.js'
import { FeatureStore } from '../../src/features/feature-store.js'
import { loadFeatureState } from '../../src/features/state-file.js'
import { PredictionServer } from '../../src/server/app.js'
import { InferenceGate } from '../helpers/inference-gate.js'
import { prng } from '../helpers/prng.js'
import { getJson, postJson } from '../helpers/start-server.js'

const kBarMs = 60_000
const kBars = 70 // past the longest window (60 bars): every ring has wrapped by the cut
const kSymbols = ['RSTAUSDT', 'RSTBUSDT', 'RSTCUSDT']
// The sequence ends at the bar before the current one, so that its bars are recent when the
// restarted server applies the stale rule, and every timestamp (up to 50 s into its bar) is in the
// past: max_clock_skew_ms refuses more than 2 s ahead of the clock. max_gap_bars spans the whole sequence: a restored symbol's saved bar is
// up to kBars behind the wall clock, and the test is about restoring, not about the gap rule
// (test/features/state-file.test.ts covers that).
const kLastBar = Math.floor(Date.now() / kBarMs) - 1
const kFirstBar = kLastBar - kBars + 1
const kSettings: Partial<RawSettings> = { max_gap_bars: 200, workers: 1, warmup_runs: 1, state_save_interval_s: 0 }

interface Started { server: PredictionServer, url: string, logs: Array<Record<string, any>> }

/** The real server on an ephemeral loopback port, its log lines captured for the checks. */
async function start (t: Test, settings: Partial<RawSettings>): Promise<Started> {
  const config = configFromSettings({ host: '127.0.0.1', port: 0, deadline_ms: 60_000, log_level: 'info', ...kSettings, ...settings })
  const logs: Array<Record<string, any>> = []
  const sink = new Writable({ write (chunk, _enc, done) { logs.push(JSON.parse(String(chunk))); done() } })
  const server = await PredictionServer.start(config, pino({ level: config.logLevel }, sink))
  t.teardown(() => server.close())
  return { server, url: `http://127.0.0.1:${server.port}`, logs }
}

/**
 * Every request of the sequence, in order: per bar and symbol a mid-bar poll, then the final
 * candle at bar close, as the bot sends them. Some omit BTC or volume (NaN in the windows).
 */
function sequence (): Array<Record<string, unknown>> {
  const rand = prng(77)
  const price = new Map(kSymbols.map((s, i) => [s, 50 * (i + 1) + rand() * 100]))
  let btc = 62_000
  const out: Array<Record<string, unknown>> = []
  for (let bar = kFirstBar; bar <= kLastBar; bar++) {
    btc *= Math.exp((rand() - 0.5) * 0.004)
    for (const symbol of kSymbols) {
      const open = price.get(symbol)!
      const close = open * Math.exp((rand() - 0.48) * 0.01)
      price.set(symbol, close)
      out.push({ symbol, price: open + (close - open) * rand(), bid_volume: rand() * 100, ask_volume: rand() * 100, timestamp_ms: bar * kBarMs + 5_000 })
      const spread = close * (0.0001 + rand() * 0.001)
      out.push({
        symbol,
        price: close,
        open,
        high: Math.max(open, close) * (1 + rand() * 0.003),
        low: Math.min(open, close) * (1 - rand() * 0.003),
        ...(rand() < 0.9 ? { volume: 100 + rand() * 2000 } : {}),
        bid_volume: 100 + rand() * 500,
        ask_volume: 100 + rand() * 500,
        best_bid: close - spread / 2,
        best_ask: close + spread / 2,
        ...(rand() < 0.9 ? { btc_price: btc } : {}),
        funding_rate: 0.0001,
        timestamp_ms: bar * kBarMs + 50_000,
      })
    }
  }
  return out
}

/** The answer without latency_ms: everything the model and the features decide. */
type Answer = Record<string, unknown>

async function ask (t: Test, url: string, body: Record<string, unknown>): Promise<Answer> {
  const res = await postJson(`${url}/predict`, body)
  if (res.status !== 200) t.fail(`expected 200, got ${res.status} ${JSON.stringify(res.body)}`)
  const { latency_ms: _latency, ...answer } = res.body as Answer
  return answer
}

/** Bitwise: JSON numbers parse back to the exact double that was printed. */
function sameAnswer (a: Answer, b: Answer): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => Object.is(a[k], b[k]))
}

function compare (t: Test, label: string, got: Answer[], want: Answer[]): void {
  t.equal(got.length, want.length, `${label}: as many answers`)
  const differing = got.findIndex((a, i) => !sameAnswer(a, want[i]!))
  if (differing >= 0) t.fail(`${label}: answer ${differing} differs: ${JSON.stringify(got[differing])} vs ${JSON.stringify(want[differing])}`)
  else t.pass(`${label}: all ${got.length} answers identical, probability_long to the bit`)
}

/** A copy of a state file edited by `edit`, with its SHA-256 trailer recomputed: foreign, not corrupt. */
function resigned (file: Buffer, edit: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(file)
  edit(copy)
  createHash('sha256').update(copy.subarray(0, copy.length - 32)).digest().copy(copy, copy.length - 32)
  return copy
}

const requests = sequence()
// Mid-bar for the first symbol (its poll was answered, its final candle was not), at a bar where
// every window is full.
const kCut = (65 - 1) * 2 * kSymbols.length + 1
/** Requests in flight (admitted, not answered) when the stop begins. */
const kInFlight = 4

t.test('a server restarted from its state file answers the rest of the sequence as one that never stopped', async (t) => {
  const dir = t.testdir()
  const stateFile = join(dir, 'features.bin')

  const never = await start(t, {})
  const wanted: Answer[] = []
  for (const body of requests) wanted.push(await ask(t, never.url, body))
  t.ok(new Set(wanted.map((a) => a.probability_long)).size > 20, 'the history moves the answers')

  const before = await start(t, { state_file: stateFile })
  t.ok(before.logs.some((l) => l.event === 'state_absent'), 'first start: no file, said once')
  const first: Answer[] = []
  for (const body of requests.slice(0, kCut)) first.push(await ask(t, before.url, body))
  compare(t, 'before the stop', first, wanted.slice(0, kCut))

  // Stop with requests admitted and held at the worker: the save after the drain must hold them.
  const gate = new InferenceGate(before.server.service.currentModel!)
  const inFlight: Array<Promise<Answer>> = []
  for (const body of requests.slice(kCut, kCut + kInFlight)) {
    const depth = before.server.service.pending
    inFlight.push(ask(t, before.url, body))
    // One at a time, in order: each is admitted (its features applied) before the next is sent.
    const deadline = Date.now() + 10_000
    while (before.server.service.pending === depth && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
  }
  t.equal(before.server.service.pending, kInFlight, `${kInFlight} requests admitted and held`)
  const closed = before.server.close('SIGTERM')
  gate.open()
  await closed
  compare(t, 'answered during the drain', await Promise.all(inFlight), wanted.slice(kCut, kCut + kInFlight))
  const saved = before.logs.find((l) => l.event === 'state_saved')
  t.equal(saved?.trigger, 'shutdown')
  t.equal(saved?.symbols, kSymbols.length)

  const after = await start(t, { state_file: stateFile })
  const restored = after.logs.filter((l) => String(l.event).startsWith('state_'))
  t.equal(restored.length, 1, 'one state line at start')
  t.equal(restored[0]?.event, 'state_restored')
  t.equal(restored[0]?.symbols, kSymbols.length)
  t.equal((await getJson(`${after.url}/health`)).body.symbols, kSymbols.length, '/health counts the restored symbols')
  const rest: Answer[] = []
  for (const body of requests.slice(kCut + kInFlight)) rest.push(await ask(t, after.url, body))
  compare(t, 'after the restart', rest, wanted.slice(kCut + kInFlight))

  // The same stop without the state file: the answers differ, so the comparison above can fail.
  const fresh = await start(t, {})
  const freshRest: Answer[] = []
  for (const body of requests.slice(kCut + kInFlight)) freshRest.push(await ask(t, fresh.url, body))
  const differ = freshRest.filter((a, i) => !sameAnswer(a, wanted[kCut + kInFlight + i]!)).length
  t.ok(differ > 10, `a server restarted without history answers ${differ} of ${freshRest.length} differently`)

  await t.test('a corrupt or foreign state file: one log line, and the server starts with no history', async (t) => {
    const good = readFileSync(stateFile)
    const flipped = Buffer.from(good)
    flipped[Math.floor(flipped.length / 2)]! ^= 0x10
    const cases: Array<{ name: string, bytes: Buffer, settings: Partial<RawSettings>, reason: string }> = [
      { name: 'a flipped byte', bytes: flipped, settings: {}, reason: 'checksum' },
      { name: 'truncated', bytes: good.subarray(0, good.length - 100), settings: {}, reason: 'truncated' },
      { name: 'saved for another feature set', bytes: resigned(good, (b) => b.write('bars-v0', 41, 'latin1')), settings: {}, reason: 'feature_set_version' },
      // The shipped model refuses 30 s bars; without a model the server still starts, and still
      // judges the state file by its own bar_ms.
      { name: 'saved with another bar_ms', bytes: good, settings: { bar_ms: 30_000, require_model: false }, reason: 'bar_ms' },
      { name: 'not a state file', bytes: Buffer.from('{"not": "state"}\n'.repeat(8)), settings: {}, reason: 'bad_magic' },
    ]
    for (const c of cases) {
      const path = join(dir, `case-${c.reason}.bin`)
      writeFileSync(path, c.bytes)
      const started = performance.now()
      const s = await start(t, { state_file: path, ...c.settings })
      const startMs = performance.now() - started
      const lines = s.logs.filter((l) => String(l.event).startsWith('state_'))
      t.equal(lines.length, 1, `${c.name}: one state line`)
      t.equal(lines[0]?.event, 'state_refused')
      t.equal(lines[0]?.reason, c.reason, `${c.name}: ${lines[0]?.msg}`)
      t.equal(lines[0]?.level, 40, 'a warning')
      t.equal((await getJson(`${s.url}/health`)).body.symbols, 0, `${c.name}: starts with no symbols (started in ${Math.round(startMs)} ms)`)
      if (c.reason === 'checksum') {
        const answers: Answer[] = []
        for (const body of requests.slice(kCut + kInFlight, kCut + kInFlight + 30)) answers.push(await ask(t, s.url, body))
        compare(t, `${c.name}: answers as a server with no history`, answers, freshRest.slice(0, 30))
      }
      await s.server.close()
    }
  })
})

t.test('while serving, the state is saved every state_save_interval_s (what a crash leaves behind)', async (t) => {
  const dir = t.testdir()
  const stateFile = join(dir, 'features.bin')
  const s = await start(t, { state_file: stateFile, state_save_interval_s: 1, log_level: 'debug' })
  // Traffic during the saves: each saved symbol must still be a whole, loadable state.
  const deadline = Date.now() + 10_000
  let i = 0
  while (s.logs.filter((l) => l.event === 'state_saved').length < 2 && Date.now() < deadline) {
    // Past the end of the sequence, the last request again: an update inside the current bar.
    await ask(t, s.url, requests[Math.min(i, requests.length - 1)]!)
    i++
  }
  const periodic = s.logs.filter((l) => l.event === 'state_saved')
  t.ok(periodic.length >= 2, `${periodic.length} periodic saves within the deadline, ${i} requests meanwhile`)
  t.ok(periodic.every((l) => l.trigger === 'periodic' && l.level === 20), 'periodic saves log at debug')
  // Read as a restarted server would, without stopping this one (a crash leaves no shutdown save).
  const store = new FeatureStore({ barMs: kBarMs, maxGapBars: 200, maxSymbols: 100 })
  const loaded = await loadFeatureState(store, stateFile)
  t.equal(loaded?.restored, kSymbols.length, 'every symbol of the last periodic save restores')
})

t.test('a start that fails leaves the state file as it was', async (t) => {
  const dir = t.testdir()
  const stateFile = join(dir, 'features.bin')
  const other = join(dir, 'other.bin')
  const s = await start(t, { state_file: stateFile })
  for (const body of requests.slice(0, 12)) await ask(t, s.url, body)
  await s.server.close()
  // Refused by a server with another bar_ms whose model then fails to load: it must not replace
  // the file with its empty store on the way out.
  writeFileSync(other, readFileSync(stateFile))
  const before = readFileSync(other)
  const config = configFromSettings({ host: '127.0.0.1', port: 0, log_level: 'silent', ...kSettings, state_file: other, bar_ms: 30_000 })
  await t.rejects(PredictionServer.start(config, pino({ level: 'silent' })), { code: 'ERR_MODEL_INCOMPATIBLE' })
  t.ok(readFileSync(other).equals(before), 'the file is byte for byte the same')
})
