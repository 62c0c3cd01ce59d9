/**
 * `npm run replay -- --keep-ties`: tie bars (next close unchanged) reach the matrix with an empty
 * label, so the backtest in training/train.py can trade them as the live bot would; without the
 * flag they are dropped as before (the shipped model's matrix hash depends on that).
 */
import t from 'tap'
import { replayCandles } from '../../src/cli/replay.js'
import type { CandleColumns } from '../../src/features/candle-file.js'

function candles (closes: number[], times?: number[]): CandleColumns {
  const n = closes.length
  const c = Float64Array.from(closes)
  return {
    openTimeMs: Float64Array.from(times ?? closes.map((_, i) => 1_700_000_000_000 + i * 60_000)),
    open: c, high: c.map(v => v + 1), low: c.map(v => v - 1), close: c, volume: new Float64Array(n).fill(10), length: n,
  }
}

function rows (keepTies: boolean, input: CandleColumns): Array<[number, 0 | 1 | null]> {
  const out: Array<[number, 0 | 1 | null]> = []
  replayCandles({ candles: input, btc: null, funding: null, barMs: 60_000, maxGapBars: 5, keepTies },
    (time, _features, label) => { out.push([time, label]) })
  return out
}

t.test('tie bars: dropped by default, kept with a null label under keepTies', async t => {
  // closes 100 101 101 100 100 100 102: bars 1, 3 and 4 are ties (the next close is the same)
  const input = candles([100, 101, 101, 100, 100, 100, 102])
  const base = 1_700_000_000_000
  const labels = rows(false, input)
  t.same(labels.map(r => r[1]), [1, 0, 1], 'default: only the bars with a direction')
  const kept = rows(true, input)
  t.same(kept.map(r => r[1]), [1, null, 0, null, null, 1], 'keepTies: ties in time order, label null')
  t.same(kept.filter(r => r[1] !== null), labels, 'the labelled rows are the same either way')
  t.equal(kept[1]![0], base + 60_000, 'a tie row carries its own bar time')
})

t.test('a gap still gives no row, tie or not', async t => {
  const base = 1_700_000_000_000
  // bar 1's next candle is 3 minutes later: no label, even though its close is unchanged
  const input = candles([100, 101, 101, 102], [base, base + 60_000, base + 240_000, base + 300_000])
  t.same(rows(true, input).map(r => r[1]), [1, 1], 'the bar before the gap is not written')
})
