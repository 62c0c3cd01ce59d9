import t from 'tap'
import { kFeatureCount } from '../../src/features/feature-spec.js'
import { defaultShadowWindow, ShadowScorer, type ShadowCandidate } from '../../src/model/shadow-scorer.js'

/**
 * The scorer's sampling window, driven step by step: a candidate whose answers we release by hand
 * (the serving path is the batcher's observer calls, made here directly).
 */
class HeldCandidate implements ShadowCandidate {
  readonly workers = 1
  readonly modelVersion = 'held_candidate'
  readonly held: Array<{ rows: number, resolve: (b: ArrayBuffer) => void, reject: (e: Error) => void }> = []
  run (_buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> {
    return new Promise((resolve, reject) => { this.held.push({ rows, resolve, reject }) })
  }

  answer (probability: number): void {
    const next = this.held.shift()!
    next.resolve(new Float32Array(next.rows).fill(probability).buffer)
  }
}

const features = new Float32Array(4 * kFeatureCount)
const tick = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('a candidate behind by more than the window is sampled, and every row is either scored or skipped', async (t) => {
  const candidate = new HeldCandidate()
  const scorer = new ShadowScorer(candidate, 3)
  const tickets: number[] = []
  for (let i = 0; i < 5; i++) {
    const ticket = scorer.onDispatch(features, 2)
    tickets.push(ticket)
    if (ticket >= 0) scorer.onResult(ticket, new Float32Array([0.75, 0.25]), 2)
  }
  t.same(tickets.map(x => x >= 0), [true, true, true, false, false], 'the fourth and fifth batch find the window full')
  t.equal(scorer.stats().skipped_rows, 4)
  candidate.answer(0.75)
  candidate.answer(0.75)
  candidate.answer(0.25)
  await tick()
  const s = scorer.stats()
  t.equal(s.rows, 6)
  t.equal(s.rows + s.skipped_rows, 10, 'no row is lost from the count')
  // Rows per batch: serving [0.75, 0.25]; candidate 0.75 twice (agrees on row 0 only), then 0.25 (row 1 only).
  t.equal(s.direction_agreement, 0.5)
  t.equal(s.max_abs_diff, 0.5)
  t.equal(scorer.onDispatch(features, 1) >= 0, true, 'the window has room again once the candidate caught up')
})

t.test('a failed candidate batch or a failed serving batch frees its place in the window', async (t) => {
  const candidate = new HeldCandidate()
  const scorer = new ShadowScorer(candidate, 1)
  const first = scorer.onDispatch(features, 1)
  t.equal(scorer.onDispatch(features, 1), -1)
  candidate.held.shift()!.reject(new Error('candidate worker died'))
  await tick()
  t.equal(scorer.stats().failed_batches, 1)
  scorer.onResult(first, new Float32Array([0.9]), 1)
  const second = scorer.onDispatch(features, 1)
  t.ok(second >= 0)
  scorer.onFailure(second)
  candidate.answer(0.9)
  await tick()
  t.ok(scorer.onDispatch(features, 1) >= 0, 'the serving failure did not leave the entry behind')
  t.equal(scorer.stats().rows, 0, 'nothing to compare when one side failed')
})

t.test('the default window absorbs a candidate that lags the serving pool by a few batches', async (t) => {
  t.equal(defaultShadowWindow(1), 32)
  t.equal(defaultShadowWindow(8), 64)
})
