/**
 * Windowed inputs (src/features/window-input.ts): the GAF writer against the textbook definition
 * (rescale, arccos, cos/sin of angle sums), the metadata declaration and its check against an ONNX
 * input shape, SymbolState.recentCloses, and the replay's .npy output against windows cut directly
 * from the candle arrays.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { replayWindowed } from '../../src/cli/replay.js'
import type { CandleColumns } from '../../src/features/candle-file.js'
import { MarketSnapshot } from '../../src/features/market-snapshot.js'
import { SymbolState } from '../../src/features/symbol-state.js'
import {
  checkInputShape, parseInputSpec, WindowInputWriter, type GafChannel, type GafInputSpec, type SequenceInputSpec,
} from '../../src/features/window-input.js'
import { prng } from '../helpers/prng.js'

const kBarMs = 60_000

/** GAF straight from its definition: x~ by min-max to [-1, 1], phi = acos(x~), cos(phi_i + phi_j) / sin(phi_i - phi_j). */
function referenceGaf (values: ArrayLike<number>, n: number, kind: 'gasf' | 'gadf'): number[][] {
  const w = Array.from(values).slice(-n)
  const min = Math.min(...w)
  const max = Math.max(...w)
  const phi = w.map(v => Math.acos(max === min ? 0 : Math.min(1, Math.max(-1, (2 * v - max - min) / (max - min)))))
  return phi.map(a => phi.map(b => kind === 'gasf' ? Math.cos(a + b) : Math.sin(a - b)))
}

function randomWalk (rand: () => number, n: number, start: number): Float64Array {
  const out = new Float64Array(n)
  let p = start
  for (let i = 0; i < n; i++) { p *= Math.exp((rand() - 0.5) * 0.01); out[i] = p }
  return out
}

t.test('GAF writer matches the from-definition GAF', async t => {
  const rand = prng(14)
  const n = 32
  const channels: GafChannel[] = ['gasf_close', 'gadf_close', 'gasf_btc', 'gadf_btc']
  const writer = new WindowInputWriter({ kind: 'gaf', window: n, channels })
  t.equal(writer.rowLength, 4 * n * n)
  const out = new Float32Array(writer.rowLength + 7)
  let worst = 0
  for (let trial = 0; trial < 50; trial++) {
    // longer than the window: only the last n count
    const closes = randomWalk(rand, n + 5, 300 + 100 * rand())
    const btc = randomWalk(rand, n + 5, 50_000)
    out.fill(99)
    t.equal(writer.write(closes, btc, out, 7), true)
    const refs = [referenceGaf(closes, n, 'gasf'), referenceGaf(closes, n, 'gadf'), referenceGaf(btc, n, 'gasf'), referenceGaf(btc, n, 'gadf')]
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          worst = Math.max(worst, Math.abs(out[7 + c * n * n + i * n + j]! - refs[c]![i]![j]!))
        }
      }
    }
    t.equal(out[6], 99, 'nothing written before offset')
  }
  // float32 storage (~6e-8 relative) plus the identity's rounding; acos near +-1 is the worst case
  t.ok(worst < 2e-6, `max |writer - definition| = ${worst.toExponential(2)} < 2e-6`)
})

t.test('GAF values: diagonal, range, extremes, symmetry', async t => {
  const n = 16
  const writer = new WindowInputWriter({ kind: 'gaf', window: n, channels: ['gasf_close', 'gadf_close'] })
  const closes = randomWalk(prng(3), n, 100)
  const out = new Float32Array(writer.rowLength)
  t.ok(writer.write(closes, null, out, 0))
  for (let i = 0; i < n; i++) {
    t.equal(out[n * n + i * n + i], 0, 'GADF diagonal is sin(0) = 0')
    for (let j = 0; j < n; j++) {
      t.equal(out[i * n + j], out[j * n + i], 'GASF is symmetric')
      t.equal(out[n * n + i * n + j], -out[n * n + j * n + i]!, 'GADF is antisymmetric')
    }
  }
  for (const v of out) if (!(v >= -1 && v <= 1)) t.fail(`value ${v} outside [-1, 1]`)
  const iMax = closes.indexOf(Math.max(...closes))
  t.equal(out[iMax * n + iMax], 1, 'GASF at the window max is cos(0) = 1')
})

t.test('flat, short and broken windows', async t => {
  const n = 8
  const writer = new WindowInputWriter({ kind: 'gaf', window: n, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] })
  const out = new Float32Array(writer.rowLength)
  const flat = new Float64Array(n).fill(300)
  const btc = randomWalk(prng(1), n, 50_000)
  t.ok(writer.write(flat, btc, out, 0), 'a flat window is complete')
  t.same(Array.from(out.subarray(0, n * n)), new Array(n * n).fill(-1), 'flat: GASF = cos(pi/2 + pi/2) = -1')
  t.ok(Array.from(out.subarray(n * n, 2 * n * n)).every(v => v === 0), 'flat: GADF = 0')

  const broken: Array<[string, Float64Array, Float64Array | null]> = [
    ['too short', new Float64Array(n - 1).fill(1), btc],
    ['NaN close', Float64Array.from(flat, (v, i) => i === 3 ? Number.NaN : v), btc],
    ['zero close', Float64Array.from(flat, (v, i) => i === 0 ? 0 : v), btc],
    ['NaN btc', flat, Float64Array.from(btc, (v, i) => i === n - 1 ? Number.NaN : v)],
    ['btc needed but null', flat, null],
  ]
  for (const [what, closes, b] of broken) {
    out.fill(5)
    t.equal(writer.write(closes, b, out, 0), false, `${what}: incomplete`)
    t.ok(out.every(v => v === 0), `${what}: the row is zeroed`)
  }
  const closeOnly = new WindowInputWriter({ kind: 'gaf', window: n, channels: ['gasf_close'] })
  t.ok(closeOnly.write(flat, null, new Float32Array(n * n), 0), 'no BTC channel: BTC not needed')
})

t.test('sequence writer', async t => {
  const n = 10
  const spec: SequenceInputSpec = { kind: 'sequence', window: n, channels: ['close_scaled', 'close_logret', 'btc_scaled'] }
  const writer = new WindowInputWriter(spec)
  const closes = randomWalk(prng(9), n, 200)
  const btc = randomWalk(prng(10), n, 40_000)
  const out = new Float32Array(writer.rowLength)
  t.ok(writer.write(closes, btc, out, 0))
  const min = Math.min(...closes); const max = Math.max(...closes)
  for (let i = 0; i < n; i++) {
    t.ok(Math.abs(out[i]! - (2 * closes[i]! - max - min) / (max - min)) < 1e-6)
    t.ok(Math.abs(out[n + i]! - (i === 0 ? 0 : Math.log(closes[i]! / closes[i - 1]!))) < 1e-7)
  }
  t.equal(Math.min(...out.subarray(2 * n, 3 * n)), -1)
  t.equal(Math.max(...out.subarray(2 * n, 3 * n)), 1)
})

t.test('input declarations', async t => {
  const gaf = parseInputSpec({ kind: 'gaf', window: 32, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] })
  t.same(gaf, { kind: 'gaf', window: 32, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] })
  t.same(parseInputSpec(undefined), { kind: 'tabular' }, 'no declaration = tabular (phase-1 metadata)')
  t.same(parseInputSpec({ kind: 'tabular' }), { kind: 'tabular' })
  const bad: Array<[unknown, RegExp]> = [
    [null, /must be an object/],
    [[], /must be an object/],
    [{ kind: 'image' }, /input\.kind/],
    [{ kind: 'tabular', window: 3 }, /takes no other fields/],
    [{ kind: 'gaf', window: 32, channels: ['gasf_close'], scale: 2 }, /unknown field.*scale/],
    [{ kind: 'gaf', window: 7, channels: ['gasf_close'] }, /input\.window/],
    [{ kind: 'gaf', window: 61, channels: ['gasf_close'] }, /input\.window/],
    [{ kind: 'gaf', window: 32.5, channels: ['gasf_close'] }, /input\.window/],
    [{ kind: 'gaf', window: '32', channels: ['gasf_close'] }, /input\.window/],
    [{ kind: 'gaf', window: 32, channels: [] }, /non-empty/],
    [{ kind: 'gaf', window: 32, channels: ['close_scaled'] }, /"close_scaled" is not one of/],
    [{ kind: 'sequence', window: 32, channels: ['gasf_close'] }, /"gasf_close" is not one of/],
    [{ kind: 'gaf', window: 32, channels: ['gasf_close', 'gasf_close'] }, /appears twice/],
  ]
  for (const [raw, message] of bad) {
    t.throws(() => parseInputSpec(raw), { code: 'ERR_MODEL_INCOMPATIBLE', message }, JSON.stringify(raw))
  }
})

t.test('declaration against the ONNX input shape', async t => {
  const gaf: GafInputSpec = { kind: 'gaf', window: 32, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] }
  t.equal(checkInputShape(gaf, ['batch', 3, 32, 32], 31), null)
  t.match(checkInputShape(gaf, ['batch', 3, 16, 16], 31), /\[batch, 3, 16, 16\].*\[batch, 3, 32, 32\]/)
  t.match(checkInputShape(gaf, ['batch', 2, 32, 32], 31), /gives \[batch, 3, 32, 32\]/)
  t.match(checkInputShape(gaf, ['batch', 31], 31), /rank-4/)
  t.match(checkInputShape(gaf, [1, 3, 32, 32], 31), /batch dimension is fixed at 1/)
  t.equal(checkInputShape({ kind: 'tabular' }, ['N', 31], 31), null)
  t.match(checkInputShape({ kind: 'tabular' }, ['N', 30], 31), /\[batch, 31\]/)
  t.match(checkInputShape({ kind: 'tabular' }, ['batch', 3, 32, 32], 31), /rank-2/)
  t.equal(checkInputShape({ kind: 'sequence', window: 16, channels: ['close_scaled'] }, ['b', 1, 16], 31), null)
})

t.test('SymbolState.recentCloses: the current bar last, NaN before the history, reset at a gap', async t => {
  const state = new SymbolState(kBarMs, 5)
  const s = new MarketSnapshot()
  const out = new Float32Array(64)
  const closes = new Float64Array(8)
  const btc = new Float64Array(8)
  t.equal(state.recentCloses(closes, btc), 0, 'nothing before the first request')
  t.ok(closes.every(Number.isNaN))
  const seen: number[] = []
  for (let bar = 0; bar < 12; bar++) {
    s.reset()
    s.price = 100 + bar
    s.btcPrice = 1000 + bar
    s.timestampMs = bar * kBarMs
    state.apply(s, 0, out, 0)
    seen.push(s.price)
    const real = state.recentCloses(closes, btc)
    t.equal(real, Math.min(8, bar + 1))
    const want = Array.from({ length: 8 }, (_, k) => seen[seen.length - 8 + k] ?? Number.NaN)
    // Object.is: NaN marks a slot before the history and must match NaN exactly
    t.ok(want.every((w, k) => Object.is(closes[k], w)), `bar ${bar}: closes ${Array.from(closes).join(',')}`)
    t.ok(want.every((w, k) => Object.is(btc[k], w + 900)), `bar ${bar}: btc closes`)
  }
  // an update inside the current bar moves the last close only
  s.reset(); s.price = 555; s.timestampMs = 11 * kBarMs + 30_000
  state.apply(s, 0, out, 0)
  state.recentCloses(closes, null)
  t.equal(closes[7], 555)
  t.equal(closes[6], 110)
  // a gap longer than max_gap_bars resets the history
  s.reset(); s.price = 7; s.timestampMs = 30 * kBarMs
  state.apply(s, 0, out, 0)
  t.equal(state.recentCloses(closes, null), 1)
  t.equal(closes[7], 7)
  t.ok(closes.subarray(0, 7).every(Number.isNaN))
  t.throws(() => state.recentCloses(new Float64Array(62), null), RangeError)
  t.throws(() => state.recentCloses(closes, new Float64Array(3)), RangeError)
})

t.test('replay --input gaf writes the windows of the candles, read back as .npy', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'window-input-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rand = prng(77)
  // 200 bars with a 10-bar gap after bar 120 (a reset), and one missing BTC minute at bar 60
  const times: number[] = []
  for (let i = 0; i < 200; i++) times.push((i < 120 ? i : i + 10) * kBarMs)
  const closes = randomWalk(rand, 200, 300)
  // ties are dropped by the replay; force one to check the index skips it
  closes[40] = closes[39]!
  const btcCloses = randomWalk(rand, 200, 50_000)
  const columns = (t0: number[], c: Float64Array): CandleColumns => ({
    openTimeMs: Float64Array.from(t0), open: c, high: c, low: c, close: c, volume: new Float64Array(c.length).fill(1), length: c.length,
  })
  const btcTimes = times.filter((_, i) => i !== 60)
  const btcCol = columns(btcTimes, Float64Array.from(btcCloses.filter((_, i) => i !== 60)))
  const spec: GafInputSpec = { kind: 'gaf', window: 16, channels: ['gasf_close', 'gadf_close', 'gasf_btc'] }
  const npy = join(dir, 'x.npy')
  const stats = replayWindowed({ candles: columns(times, closes), btc: btcCol, funding: null, barMs: kBarMs, maxGapBars: 5 },
    { spec, every: 1, fromMs: -Infinity, toMs: Infinity }, npy, join(dir, 'x.index.csv'))

  const bytes = readFileSync(npy)
  t.equal(bytes.subarray(0, 6).toString('latin1'), '\x93NUMPY')
  const headerLength = bytes.readUInt16LE(8)
  t.equal((10 + headerLength) % 64, 0, 'header padded to 64 bytes, as the format asks')
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1')
  t.match(header, `'shape': (${stats.written}, 3, 16, 16)`)
  t.match(header, "'descr': '<f4'")
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length))
  const rowLength = 3 * 16 * 16
  t.equal(data.length, stats.written * rowLength)

  const index = readFileSync(join(dir, 'x.index.csv'), 'utf8').trim().split('\n')
  t.equal(index[0], 'row,open_time_ms,label,close,next_close')
  t.equal(index.length - 1, stats.written)
  // expected rows, straight from the arrays: labelled (next bar exactly one later, not a tie),
  // 16 bars since the gap, BTC present in all 16
  const writer = new WindowInputWriter(spec)
  const expected = new Float32Array(rowLength)
  let r = 0
  for (let i = 0; i + 1 < 200; i++) {
    if (times[i + 1]! - times[i]! !== kBarMs || closes[i + 1] === closes[i]) continue
    const start = i < 120 ? 0 : 120
    if (i - start + 1 < 16) continue
    if (i - 15 <= 60 && 60 <= i) continue
    const line = index[1 + r]!.split(',')
    t.equal(Number(line[1]), times[i], `row ${r} is bar ${i}`)
    t.equal(Number(line[2]), closes[i + 1]! > closes[i]! ? 1 : 0)
    t.equal(Number(line[3]), closes[i])
    t.equal(Number(line[4]), closes[i + 1])
    writer.write(closes.subarray(i - 15, i + 1), btcCloses.subarray(i - 15, i + 1), expected, 0)
    t.same(Array.from(data.subarray(r * rowLength, (r + 1) * rowLength)), Array.from(expected), `row ${r} tensor`)
    r++
  }
  t.equal(r, stats.written, 'every expected row and no other')
  t.ok(stats.incomplete > 0, 'rows after the reset and around the BTC hole were skipped')
})

t.test('replay --input gaf --keep-ties also writes tie bars, with an empty label and their tensor', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'window-input-ties-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rand = prng(78)
  const times = Array.from({ length: 60 }, (_, i) => i * kBarMs)
  const closes = randomWalk(rand, 60, 300)
  closes[40] = closes[39]! // bar 39 is a tie: the next close is unchanged
  const columns = (c: Float64Array): CandleColumns => ({
    openTimeMs: Float64Array.from(times), open: c, high: c, low: c, close: c, volume: new Float64Array(c.length).fill(1), length: c.length,
  })
  const spec: GafInputSpec = { kind: 'gaf', window: 16, channels: ['gasf_close', 'gadf_close'] }
  const run = (keepTies: boolean): { lines: string[], data: Float32Array } => {
    const npy = join(dir, `x${String(keepTies)}.npy`)
    replayWindowed({ candles: columns(closes), btc: null, funding: null, barMs: kBarMs, maxGapBars: 5 },
      { spec, every: 1, fromMs: -Infinity, toMs: Infinity, keepTies }, npy, join(dir, `x${String(keepTies)}.index.csv`))
    const bytes = readFileSync(npy)
    const headerLength = bytes.readUInt16LE(8)
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length))
    return { lines: readFileSync(join(dir, `x${String(keepTies)}.index.csv`), 'utf8').trim().split('\n').slice(1), data }
  }
  const without = run(false)
  const withTies = run(true)
  t.equal(withTies.lines.length, without.lines.length + 1, 'one more row: the tie')
  const tie = withTies.lines.findIndex(l => Number(l.split(',')[1]) === times[39])
  t.ok(tie >= 0, 'the tie bar is in the index')
  t.equal(withTies.lines[tie]!.split(',')[2], '', 'its label is empty (never fitted on)')
  t.notOk(without.lines.some(l => Number(l.split(',')[1]) === times[39]), 'without --keep-ties it is dropped')
  const writer = new WindowInputWriter(spec)
  const expected = new Float32Array(writer.rowLength)
  writer.write(closes.subarray(39 - 15, 40), null, expected, 0)
  t.same(Array.from(withTies.data.subarray(tie * writer.rowLength, (tie + 1) * writer.rowLength)), Array.from(expected),
    'its tensor is the window ending at the tie bar')
})
