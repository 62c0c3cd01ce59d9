import { kFeatureCount, kFeatureNames } from '../features/feature-spec.js'
import { label, type PrometheusWriter } from '../metrics/prometheus-writer.js'

/**
 * A model's `feature_reference` metadata (training/README.md, scripts/feature-reference.ts):
 * per feature, the inner bin edges of its training distribution, the share of its non-NaN
 * training values in each bin, and its NaN share.
 */
export interface FeatureReference {
  readonly bins: number
  readonly features: Readonly<Record<string, { readonly edges: readonly number[], readonly expected: readonly number[], readonly nan_share: number }>>
}

/** Shares are floored here before the logarithm, so an empty bin does not make PSI infinite. */
export const kPsiFloor = 1e-4
/** Features listed as the top drifting ones in /metrics. */
const kTopFeatures = 5

/**
 * Bin of `v` among sorted inner `edges`: the number of edges <= v, so bin i is [edges[i-1], edges[i])
 * with the first bin open below and the last open above (numpy searchsorted(edges, v, 'right')).
 */
export function binOf (edges: ArrayLike<number>, v: number): number {
  let lo = 0
  let hi = edges.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (edges[mid]! <= v) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Population stability index of `actual` counts against `expected` shares (both over the same bins). */
export function psi (actualCounts: ArrayLike<number>, total: number, expected: ArrayLike<number>): number {
  let sum = 0
  for (let b = 0; b < expected.length; b++) {
    const a = Math.max(actualCounts[b]! / total, kPsiFloor)
    const e = Math.max(expected[b]!, kPsiFloor)
    sum += (a - e) * Math.log(a / e)
  }
  return sum
}

/** Checks the metadata's shape; null (and a reason) when it cannot be used. */
export function parseFeatureReference (raw: unknown): { ref: FeatureReference | null, problem: string | null } {
  if (raw === undefined || raw === null) return { ref: null, problem: null }
  const r = raw as Partial<FeatureReference>
  if (typeof r !== 'object' || !Number.isInteger(r.bins) || (r.bins as number) < 2 || typeof r.features !== 'object' || r.features === null) {
    return { ref: null, problem: 'feature_reference needs "bins" (an integer >= 2) and "features"' }
  }
  for (const [name, f] of Object.entries(r.features)) {
    // train.py drops duplicate edges (a feature with a point mass, e.g. wicks at 0, has fewer than
    // bins - 1: docs/evaluation.md, "Feature reference for drift"); always one more share than edges.
    if (!Array.isArray(f.edges) || f.edges.length > r.bins! - 1 || !Array.isArray(f.expected) || f.expected.length !== f.edges.length + 1 ||
      typeof f.nan_share !== 'number' || f.edges.some((e, i) => typeof e !== 'number' || (i > 0 && e < f.edges[i - 1]!))) {
      return { ref: null, problem: `feature_reference.features.${name}: needs at most ${r.bins! - 1} sorted edges, one more expected share than edges, and nan_share` }
    }
  }
  return { ref: r as FeatureReference, problem: null }
}

/**
 * Feature drift over the rows of the last `window` closed bars (every symbol): per feature, live
 * bin counts against the serving model's reference, updated in O(features x log bins) per closed
 * bar (the row leaving the window is taken out), so reading /metrics costs O(features x bins).
 */
export class DriftMonitor {
  private readonly rows: Float32Array
  private readonly capacity: number
  private head = 0
  private count = 0
  private reference: FeatureReference | null = null
  /** Per feature: its reference, or null when the reference does not cover it. */
  private refs: Array<{ edges: Float64Array, expected: Float64Array, nanShare: number, binned: boolean } | null> = []
  private bins = 0
  private counts = new Int32Array(0)
  private readonly nanCounts = new Int32Array(kFeatureCount)
  referenceProblem: string | null = null
  referenceVersion: string | null = null

  constructor (window: number) {
    this.capacity = window
    this.rows = new Float32Array(window * kFeatureCount)
  }

  /** Uses `raw` (a model's metadata.feature_reference) from now on; the window is re-binned. */
  setReference (raw: unknown, version: string | null): void {
    const { ref, problem } = parseFeatureReference(raw)
    this.referenceProblem = problem
    this.referenceVersion = ref === null ? null : version
    this.reference = ref
    this.bins = ref?.bins ?? 0
    this.refs = kFeatureNames.map((name) => {
      const f = ref?.features[name]
      // A feature that was always NaN in training (no order book in candles) has no distribution:
      // only its NaN share is compared.
      if (f === undefined) return null
      // Live shares are of the non-NaN rows, so the expected ones are too: train.py's shares are of
      // all rows (they sum to 1 - nan_share), scripts/feature-reference.ts's of the non-NaN ones.
      const sum = f.expected.reduce((acc, e) => acc + e, 0)
      const expected = Float64Array.from(f.expected, (e) => (sum > 0 ? e / sum : e))
      return { edges: Float64Array.from(f.edges), expected, nanShare: f.nan_share, binned: sum > 0 }
    })
    this.counts = new Int32Array(kFeatureCount * this.bins)
    const cap = this.capacity
    for (let i = 0; i < this.count; i++) this.tally(((this.head - this.count + i) % cap + cap) % cap, 1, false)
  }

  get currentReference (): FeatureReference | null { return this.reference }

  /** One closed bar's feature row (kFeatureCount values from `offset`). */
  push (row: ArrayLike<number>, offset: number): void {
    const at = this.head
    if (this.count === this.capacity) this.tally(at, -1, true)
    else this.count++
    const rows = this.rows
    const base = at * kFeatureCount
    for (let k = 0; k < kFeatureCount; k++) rows[base + k] = row[offset + k]!
    this.tally(at, 1, true)
    this.head = (at + 1) % this.capacity
  }

  private tally (slot: number, delta: number, nans: boolean): void {
    const base = slot * kFeatureCount
    for (let f = 0; f < kFeatureCount; f++) {
      const v = this.rows[base + f]!
      if (v !== v) { if (nans) this.nanCounts[f]! += delta; continue }
      const r = this.refs[f]
      if (r == null || !r.binned) continue
      this.counts[f * this.bins + binOf(r.edges, v)]! += delta
    }
  }

  /** Per feature: PSI (null without a reference or without non-NaN rows) and the NaN shares. */
  features (): Array<{ feature: string, psi: number | null, nan_share: number | null, reference_nan_share: number | null, rows: number }> {
    const out = []
    for (let f = 0; f < kFeatureCount; f++) {
      const nan = this.nanCounts[f]!
      const valued = this.count - nan
      const r = this.refs[f] ?? null
      let value: number | null = null
      if (r !== null && r.binned && valued > 0) value = psi(this.counts.subarray(f * this.bins, (f + 1) * this.bins), valued, r.expected)
      out.push({
        feature: kFeatureNames[f]!,
        psi: value,
        nan_share: this.count === 0 ? null : nan / this.count,
        reference_nan_share: r?.nanShare ?? null,
        rows: this.count,
      })
    }
    return out
  }

  json (): Record<string, unknown> {
    const features = this.features()
    const top = features.filter(f => f.psi !== null).sort((a, b) => b.psi! - a.psi!).slice(0, kTopFeatures)
    return {
      window_rows: this.count,
      window_capacity: this.capacity,
      reference_model_version: this.referenceVersion,
      reference_problem: this.referenceProblem,
      top: top.map(f => ({ feature: f.feature, psi: round(f.psi), nan_share: round(f.nan_share), reference_nan_share: round(f.reference_nan_share) })),
      features: Object.fromEntries(features.map(f => [f.feature, { psi: round(f.psi), nan_share: round(f.nan_share), reference_nan_share: round(f.reference_nan_share) }])),
    }
  }

  writePrometheus (w: PrometheusWriter): void {
    const features = this.features()
    w.family('ml_drift_window_rows', 'gauge', 'Closed-bar feature rows in the drift window (drift_window at most)')
    w.sample('ml_drift_window_rows', '', this.count)
    w.family('ml_feature_psi', 'gauge', 'Population stability index of each feature over the drift window against the serving model\'s training reference')
    for (const f of features) if (f.psi !== null) w.sample('ml_feature_psi', label('feature', f.feature), f.psi)
    w.family('ml_feature_nan_share', 'gauge', 'Share of NaN values of each feature over the drift window')
    for (const f of features) if (f.nan_share !== null) w.sample('ml_feature_nan_share', label('feature', f.feature), f.nan_share)
    w.family('ml_feature_reference_nan_share', 'gauge', 'Share of NaN values of each feature in the serving model\'s training data')
    for (const f of features) if (f.reference_nan_share !== null) w.sample('ml_feature_reference_nan_share', label('feature', f.feature), f.reference_nan_share)
  }
}

function round (v: number | null): number | null {
  return v === null ? null : Math.round(v * 1e6) / 1e6
}
