/**
 * The feature state file on its own (src/features/state-file.ts): a store saved mid-sequence and
 * loaded into a new store answers the rest of the sequence bit for bit as the store that never
 * stopped; corrupt, truncated, foreign and oversized files are refused with the store left empty;
 * stale symbols and symbols beyond max_symbols are left out. The HTTP restart test is
 * test/server/state-restart.test.ts.
 */
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { StateFileError } from '../../src/errors.js'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { FeatureStore } from '../../src/features/feature-store.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { loadFeatureState, maxStateFileBytes, saveFeatureState } from '../../src/features/state-file.js'
import { prng } from '../helpers/reference-features.js'

const kBarMs = 60_000
const kMaxGap = 5

interface Step { symbol: string, bar: number, s: MarketSnapshot }

/**
 * A random request stream over several symbols on one clock, as live traffic is: same-bar
 * repeats, next bars, rare clock jumps past max_gap_bars (history resets), missing volume/BTC (NaN
 * in the windows), long enough that every window wraps and its running sums are recomputed.
 * A symbol left idle past max_gap_bars meets the stale rule of the loader.
 */
function stream (seed: number, steps: number, symbols: string[], firstBar: number): Step[] {
  const rnd = prng(seed)
  const prices = new Map<string, number>()
  let bar = firstBar
  let btc = 50_000
  const out: Step[] = []
  for (let i = 0; i < steps; i++) {
    // The first symbol is the busiest, the last rarely seen (so it often goes stale).
    const symbol = symbols[Math.min(symbols.length - 1, Math.floor(-Math.log(1 - rnd()) * symbols.length / 3))]!
    const u = rnd()
    bar += u < 0.7 ? 0 : u < 0.995 ? 1 : kMaxGap + 1
    const price = (prices.get(symbol) ?? 100 + rnd() * 500) * Math.exp((rnd() - 0.5) * 0.004)
    prices.set(symbol, price)
    btc *= Math.exp((rnd() - 0.5) * 0.003)
    const s = new MarketSnapshot()
    s.price = price
    s.open = rnd() < 0.5 ? price * (1 + (rnd() - 0.5) * 0.002) : Number.NaN
    s.volume = rnd() < 0.9 ? rnd() * 1000 : Number.NaN
    s.btcPrice = rnd() < 0.9 ? btc : Number.NaN
    s.bidVolume = rnd() * 10
    s.askVolume = rnd() * 10
    s.bestBid = price * 0.9999
    s.bestAsk = price * 1.0001
    s.fundingRate = 0.0001
    s.timestampMs = bar * kBarMs + Math.floor(rnd() * kBarMs)
    out.push({ symbol, bar, s })
  }
  return out
}

function newStore (maxSymbols = 100, barMs = kBarMs): FeatureStore {
  return new FeatureStore({ barMs, maxGapBars: kMaxGap, maxSymbols })
}

/** Applies steps and returns every written row, as bytes. */
function run (store: FeatureStore, steps: readonly Step[]): Buffer {
  const rows = new Float64Array(steps.length * kFeatureCount)
  for (let i = 0; i < steps.length; i++) {
    const { symbol, s } = steps[i]!
    store.apply(symbol, s, s.timestampMs, rows, i * kFeatureCount)
  }
  return Buffer.from(rows.buffer)
}

const kSymbols = ['AAAUSDT', 'BBBUSDT', 'CCCUSDT', 'D_1', 'e-2']
const kFirstBar = 29_000_000
/** A clock at the first bar of every stream: no saved symbol is behind it, so none is stale. */
const kNoneStale = kFirstBar * kBarMs

t.test('saved mid-sequence and loaded into a new store, the rest answers bit for bit the same', async (t) => {
  const dir = t.testdir()
  for (const seed of [1, 2, 3]) {
    const steps = stream(seed, 4000, kSymbols, kFirstBar)
    const never = newStore()
    const everyRow = run(never, steps)
    let staleSeen = 0
    for (const k of [1, 137, 1999, 2500, 3999]) {
      const before = newStore()
      run(before, steps.slice(0, k))
      const path = join(dir, `s${seed}-${k}.bin`)
      const saved = await saveFeatureState(before, path)
      t.equal(saved.symbols, before.size)
      const after = newStore()
      // Restarted just before the next request: "now" is its bar. Symbols idle past
      // max_gap_bars start fresh, which is what their next request would do to them anyway.
      const now = steps[k]!.bar * kBarMs
      const loaded = await loadFeatureState(after, path, now)
      staleSeen += loaded!.stale
      t.equal(loaded!.restored + loaded!.stale, before.size, `seed ${seed}, k ${k}: each symbol restored or stale`)
      t.strictSame(after.entries().map(([s]) => s),
        before.entries().filter(([, st]) => steps[k]!.bar - st.barIndex <= kMaxGap).map(([s]) => s),
        'least-recently-used order kept')
      const rest = run(after, steps.slice(k))
      const expected = everyRow.subarray(k * kFeatureCount * 8)
      if (!rest.equals(expected)) t.fail(`seed ${seed}, k ${k}: a restored row differs from the never-stopped store`)
      else t.pass(`seed ${seed}, k ${k}: ${steps.length - k} rows identical to the bit`)
    }
    t.ok(staleSeen > 0, `seed ${seed}: the stale rule was exercised (${staleSeen} symbols)`)
  }
  t.strictSame(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left behind')
})

t.test('a saved file loads to the same bytes when saved again (every slot round-trips)', async (t) => {
  const dir = t.testdir()
  const store = newStore()
  run(store, stream(7, 2000, kSymbols, kFirstBar))
  const a = join(dir, 'a.bin')
  const b = join(dir, 'b.bin')
  await saveFeatureState(store, a, 1_000)
  const again = newStore()
  await loadFeatureState(again, a, kNoneStale)
  await saveFeatureState(again, b, 1_000)
  t.ok(readFileSync(a).equals(readFileSync(b)), 'identical files')
})

/** Writes a state file, lets `edit` change it (re-signing unless told not to), and loads it. */
async function refusal (t: Test, edit: (file: Buffer) => Buffer, resign: boolean, loadInto = newStore()): Promise<StateFileError | null> {
  const dir = t.testdir()
  const path = join(dir, 'state.bin')
  const store = newStore()
  const steps = stream(5, 500, kSymbols, kFirstBar)
  run(store, steps)
  await saveFeatureState(store, path)
  let file = edit(readFileSync(path))
  if (resign) {
    file = Buffer.from(file)
    createHash('sha256').update(file.subarray(0, file.length - 32)).digest().copy(file, file.length - 32)
  }
  writeFileSync(path, file)
  try {
    await loadFeatureState(loadInto, path, kNoneStale)
  } catch (err) {
    t.equal(loadInto.size, 0, 'the store is left empty')
    if (err instanceof StateFileError) {
      t.equal(err.code, 'ERR_STATE_FILE')
      return err
    }
    throw err
  }
  return null
}

t.test('corrupt, truncated and foreign files are refused, naming why', async (t) => {
  const flip = (at: (len: number) => number) => (f: Buffer): Buffer => { const c = Buffer.from(f); c[at(c.length)]! ^= 0x01; return c }
  const cases: Array<{ name: string, edit: (f: Buffer) => Buffer, resign: boolean, reason: string }> = [
    { name: 'a flipped bit in a record', edit: flip((n) => Math.floor(n / 2)), resign: false, reason: 'checksum' },
    { name: 'a flipped bit in a symbol name', edit: flip(() => 64 + 3), resign: false, reason: 'checksum' },
    { name: 'a flipped bit in bar_ms', edit: flip(() => 25), resign: false, reason: 'checksum' },
    { name: 'a flipped bit in the trailer count', edit: flip((n) => n - 40), resign: false, reason: 'checksum' },
    { name: 'a flipped bit in the checksum', edit: flip((n) => n - 1), resign: false, reason: 'checksum' },
    { name: 'a flipped bit in the magic', edit: flip(() => 0), resign: false, reason: 'bad_magic' },
    { name: 'cut inside a record', edit: (f) => f.subarray(0, Math.floor(f.length / 2)), resign: false, reason: 'truncated' },
    { name: 'cut at the trailer', edit: (f) => f.subarray(0, f.length - 32), resign: false, reason: 'truncated' },
    { name: 'cut inside the header', edit: (f) => f.subarray(0, 30), resign: false, reason: 'truncated' },
    { name: 'empty', edit: () => Buffer.alloc(0), resign: false, reason: 'truncated' },
    { name: 'another format version', edit: (f) => { const c = Buffer.from(f); c.writeUInt32LE(2, 8); return c }, resign: true, reason: 'format_version' },
    { name: 'the other byte order', edit: (f) => { const c = Buffer.from(f); c.writeUInt32LE(c.readUInt32LE(12) === 1 ? 2 : 1, 12); return c }, resign: true, reason: 'byte_order' },
    { name: 'another record layout', edit: (f) => { const c = Buffer.from(f); c.writeUInt32LE(c.readUInt32LE(16) + 1, 16); return c }, resign: true, reason: 'record_layout' },
    { name: 'another feature set version', edit: (f) => { const c = Buffer.from(f); c.write('bars-v2', 41, 'latin1'); return c }, resign: true, reason: 'feature_set_version' },
    { name: 'another bar_ms', edit: (f) => { const c = Buffer.from(f); c.writeDoubleLE(30_000, 24); return c }, resign: true, reason: 'bar_ms' },
    { name: 'a trailer count that disagrees', edit: (f) => { const c = Buffer.from(f); c.writeUInt32LE(1, c.length - 40); return c }, resign: true, reason: 'bad_record' },
    { name: 'a ring index out of range', edit: (f) => { const c = Buffer.from(f); c.writeDoubleLE(61, 64 + 40 + 15 * 8); return c }, resign: true, reason: 'bad_record' },
    { name: 'a counter that is not whole', edit: (f) => { const c = Buffer.from(f); c.writeDoubleLE(2.5, 64 + 40 + 7 * 8); return c }, resign: true, reason: 'bad_record' },
    { name: 'a symbol name outside the pattern', edit: (f) => { const c = Buffer.from(f); c.write('A B', 65, 'latin1'); return c }, resign: true, reason: 'bad_record' },
    { name: 'a file that is not a state file', edit: () => Buffer.from('{"symbols": []}\n'.repeat(10)), resign: false, reason: 'bad_magic' },
  ]
  for (const c of cases) {
    const err = await refusal(t, c.edit, c.resign)
    t.equal(err?.reason, c.reason, `${c.name}: refused as ${c.reason} (${err?.message ?? 'loaded'})`)
  }
  const err = await refusal(t, (f) => f, false, newStore(100, 30_000))
  t.equal(err?.reason, 'bar_ms', `a server with another bar_ms refuses a good file: ${err?.message}`)
  const ok = await refusal(t, (f) => f, false)
  t.equal(ok, null, 'the unedited file loads (the cases above fail for their edit alone)')
})

t.test('a file larger than max_symbols allows is refused unread', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'big.bin')
  const store = newStore(3)
  writeFileSync(path, 'MLFSTATE')
  truncateSync(path, maxStateFileBytes(store) + 1)
  const err = await loadFeatureState(store, path).catch((e: unknown) => e)
  t.equal((err as StateFileError).reason, 'too_large', (err as Error).message)
  t.equal(store.size, 0)
})

t.test('no file: null, nothing restored; an unreadable path is refused as unreadable', async (t) => {
  const dir = t.testdir({ folder: {} })
  t.equal(await loadFeatureState(newStore(), join(dir, 'absent.bin')), null)
  const err = await loadFeatureState(newStore(), join(dir, 'folder')).catch((e: unknown) => e)
  t.equal((err as StateFileError).reason, 'unreadable', (err as Error).message)
})

t.test('symbols further back than max_gap_bars start fresh; the rest keep their history', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'state.bin')
  const store = newStore()
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  // OLD's last bar is kMaxGap + 1 behind "now", EDGE's exactly kMaxGap, NEW's is now.
  const now = kFirstBar + 100
  for (const [symbol, last] of [['OLD', now - kMaxGap - 1], ['EDGE', now - kMaxGap], ['NEW', now]] as const) {
    for (let bar = last - 30; bar <= last; bar++) {
      s.reset(); s.price = 100 + bar % 7; s.timestampMs = bar * kBarMs
      store.apply(symbol, s, 0, row, 0)
    }
  }
  await saveFeatureState(store, path)
  const after = newStore()
  const r = await loadFeatureState(after, path, now * kBarMs + 59_999)
  t.equal(r?.stale, 1)
  t.equal(r?.restored, 2)
  t.strictSame(after.entries().map(([sym]) => sym), ['EDGE', 'NEW'])
  t.equal(after.currentBar('EDGE'), now - kMaxGap, 'a symbol exactly max_gap_bars behind keeps its history (its next bar continues it)')
})

t.test('restored symbols stay within max_symbols: the most recently used are kept', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'state.bin')
  const store = newStore()
  const steps = stream(9, 300, ['S1', 'S2', 'S3', 'S4', 'S5', 'S6'], kFirstBar)
  run(store, steps)
  await saveFeatureState(store, path)
  const order = store.entries().map(([s]) => s)
  const small = newStore(3)
  const r = await loadFeatureState(small, path, kNoneStale)
  t.equal(r?.restored, 3)
  t.equal(r?.overLimit, 3)
  t.strictSame(small.entries().map(([s]) => s), order.slice(-3), 'the three most recent, in their order')
})

t.test('a save into a missing folder fails with ENOENT', async (t) => {
  const dir = t.testdir()
  const store = newStore()
  run(store, stream(3, 200, kSymbols, kFirstBar))
  const err = await saveFeatureState(store, join(dir, 'missing-folder', 'state.bin')).catch((e: unknown) => e)
  t.equal((err as NodeJS.ErrnoException).code, 'ENOENT')
})

t.test('a save whose rename fails removes its temporary file and leaves the path untouched', async (t) => {
  // The target is a non-empty folder: the temporary file is written and synced, the rename fails.
  const dir = t.testdir({ blocked: { keep: 'x' } })
  const store = newStore()
  run(store, stream(3, 200, kSymbols, kFirstBar))
  const err = await saveFeatureState(store, join(dir, 'blocked')).catch((e: unknown) => e)
  t.ok(err instanceof Error, `rename over a folder fails: ${(err as Error).message}`)
  t.notOk(existsSync(join(dir, 'blocked.tmp')), 'the temporary file is removed')
  t.ok(existsSync(join(dir, 'blocked', 'keep')), 'what was at the path is untouched')
})

t.test('10,000 symbols with full windows: save and load times and the file size', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'state.bin')
  const store = newStore(10_000)
  const s = new MarketSnapshot()
  const row = new Float64Array(kFeatureCount)
  const rnd = prng(42)
  const bars = 70 // more than the longest window (60): every ring is full and has wrapped
  for (let i = 0; i < 10_000; i++) {
    const symbol = `SYM${i}`
    let price = 10 + rnd() * 1000
    for (let b = 0; b < bars; b++) {
      s.reset()
      price *= Math.exp((rnd() - 0.5) * 0.01)
      s.price = price; s.volume = rnd() * 100; s.btcPrice = 60_000 + rnd() * 100
      s.timestampMs = (kFirstBar + b) * kBarMs
      store.apply(symbol, s, 0, row, 0)
    }
  }
  const now = (kFirstBar + bars - 1) * kBarMs
  // Event-loop stalls during the save: a timer chain records the longest gap between turns.
  let longestTurnMs = 0
  let last = performance.now()
  let ticking = true
  const tick = (): void => {
    const nowT = performance.now()
    if (nowT - last > longestTurnMs) longestTurnMs = nowT - last
    last = nowT
    if (ticking) setImmediate(tick)
  }
  setImmediate(tick)
  const saved = await saveFeatureState(store, path, now)
  ticking = false
  const after = newStore(10_000)
  const loaded = await loadFeatureState(after, path, now)
  t.equal(saved.symbols, 10_000)
  t.equal(loaded?.restored, 10_000)
  t.ok(saved.bytes <= maxStateFileBytes(after), 'a full store fits the size bound')
  // A sample of rows continues identically.
  const next = new MarketSnapshot()
  next.price = 123.456; next.volume = 7; next.btcPrice = 60_050; next.timestampMs = (kFirstBar + bars) * kBarMs
  const a = new Float64Array(kFeatureCount)
  const b = new Float64Array(kFeatureCount)
  let same = 0
  for (let i = 0; i < 10_000; i += 97) {
    store.apply(`SYM${i}`, next, 0, a, 0)
    after.apply(`SYM${i}`, next, 0, b, 0)
    if (Buffer.from(a.buffer).equals(Buffer.from(b.buffer))) same++
    else t.fail(`SYM${i} differs after restore`)
  }
  t.ok(same > 100, `${same} sampled symbols continue bit for bit`)
  t.comment(`10k symbols, full windows: file ${saved.bytes} bytes (${(saved.bytes / 1e6).toFixed(1)} MB), ` +
    `save ${saved.ms.toFixed(1)} ms (longest event-loop turn during it ${longestTurnMs.toFixed(1)} ms), load ${loaded?.ms.toFixed(1)} ms`)
})
