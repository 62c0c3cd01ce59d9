/** PSI and NaN shares of the drift window against a reference, checked against values worked out by hand. */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { kFeatureCount, kFeatureNames } from '../../src/features/feature-spec.js'
import { binOf, DriftMonitor, parseFeatureReference, psi } from '../../src/monitoring/drift.js'

const kRet1 = kFeatureNames.indexOf('ret_1')

t.test('binOf: bin i is [edges[i-1], edges[i])', async (t) => {
  t.equal(binOf([0, 1, 2], -5), 0)
  t.equal(binOf([0, 1, 2], 0), 1)
  t.equal(binOf([0, 1, 2], 1.5), 2)
  t.equal(binOf([0, 1, 2], 2), 3)
  t.equal(binOf([0, 0, 0], 0), 3, 'tied edges: a value on them goes above')
})

t.test('PSI by hand', async (t) => {
  // expected [0.5, 0.5], actual [0.75, 0.25]: 0.25 ln 1.5 + 0.25 ln 2 = 0.274653
  t.ok(Math.abs(psi([3, 1], 4, [0.5, 0.5]) - (0.25 * Math.log(1.5) + 0.25 * Math.log(2))) < 1e-15)
  t.ok(Math.abs(psi([3, 1], 4, [0.5, 0.5]) - 0.274653) < 1e-6)
  t.equal(psi([2, 2], 4, [0.5, 0.5]), 0, 'same distribution: 0')
  // An empty bin is floored at 1e-4: (1e-4 - 0.5) ln(1e-4 / 0.5) + (1 - 0.5) ln(1 / 0.5)
  t.ok(Math.abs(psi([0, 4], 4, [0.5, 0.5]) - ((1e-4 - 0.5) * Math.log(1e-4 / 0.5) + 0.5 * Math.log(2))) < 1e-12)
})

t.test('the window: PSI and NaN share per feature, the row leaving the window taken out', async (t) => {
  const ref = { bins: 2, features: { ret_1: { edges: [0], expected: [0.5, 0.5], nan_share: 0.1 }, book_imbalance: { edges: [0], expected: [0, 0], nan_share: 1 } } }
  const drift = new DriftMonitor(4)
  drift.setReference(ref, 'v1')
  const row = new Float32Array(kFeatureCount).fill(Number.NaN)
  const push = (v: number): void => { row[kRet1] = v; drift.push(row, 0) }
  push(5) // leaves the window below
  push(-1); push(-2); push(Number.NaN); push(3)
  const f = drift.features().find(x => x.feature === 'ret_1')!
  // Window: -1, -2, NaN, 3 -> 3 valued rows: 2 below 0, 1 above; NaN share 1/4.
  t.ok(Math.abs(f.psi! - ((2 / 3 - 0.5) * Math.log((2 / 3) / 0.5) + (1 / 3 - 0.5) * Math.log((1 / 3) / 0.5))) < 1e-12)
  t.equal(f.nan_share, 0.25)
  t.equal(f.reference_nan_share, 0.1)
  const book = drift.features().find(x => x.feature === 'book_imbalance')!
  t.equal(book.psi, null, 'always NaN in training: no PSI, only NaN shares')
  t.equal(book.nan_share, 1)
  // A new reference re-bins the window.
  drift.setReference({ bins: 2, features: { ret_1: { edges: [-1.5], expected: [0.5, 0.5], nan_share: 0 } } }, 'v2')
  const g = drift.features().find(x => x.feature === 'ret_1')!
  t.ok(Math.abs(g.psi! - ((1 / 3 - 0.5) * Math.log((1 / 3) / 0.5) + (2 / 3 - 0.5) * Math.log((2 / 3) / 0.5))) < 1e-12)
  t.equal((drift.json() as any).top[0].feature, 'ret_1')
})

t.test('a malformed reference is reported, not used', async (t) => {
  t.match(parseFeatureReference({ bins: 10, features: { ret_1: { edges: [1, 0], expected: [1], nan_share: 0 } } }), { ref: null, problem: /ret_1/ })
  t.match(parseFeatureReference(undefined), { ref: null, problem: null })
})

t.test('train.py\'s format: duplicate edges dropped, shares of all rows (NaN included)', async (t) => {
  for (const model of ['xgboost_phase1_v2_calibrated', 'xgboost_phase1_v1']) {
    const meta = JSON.parse(readFileSync(new URL(`../../models/${model}.json`, import.meta.url), 'utf8')) as { feature_reference: unknown }
    t.equal(parseFeatureReference(meta.feature_reference).problem, null, `${model}'s reference is usable`)
  }
  // 3 bins in the header, one edge kept; shares of all rows: 0.3 + 0.5 + NaN 0.2 = 1.
  const drift = new DriftMonitor(4)
  drift.setReference({ bins: 3, features: { ret_1: { edges: [0], expected: [0.3, 0.5], nan_share: 0.2 } } }, 'train')
  t.equal(drift.referenceProblem, null)
  const row = new Float32Array(kFeatureCount).fill(Number.NaN)
  for (const v of [-1, 1, 2, Number.NaN]) { row[kRet1] = v; drift.push(row, 0) }
  // Valued rows 1 below, 2 at or above 0, against 0.3 / 0.8 and 0.5 / 0.8 of the non-NaN rows.
  const f = drift.features().find(x => x.feature === 'ret_1')!
  const e0 = 0.3 / 0.8
  const e1 = 0.5 / 0.8
  t.ok(Math.abs(f.psi! - ((1 / 3 - e0) * Math.log((1 / 3) / e0) + (2 / 3 - e1) * Math.log((2 / 3) / e1))) < 1e-12, `psi ${f.psi}`)
  t.equal(f.nan_share, 0.25)
  t.match(parseFeatureReference({ bins: 3, features: { ret_1: { edges: [0], expected: [0.3, 0.5, 0.2], nan_share: 0 } } }), { ref: null, problem: /one more expected share than edges/ })
})
