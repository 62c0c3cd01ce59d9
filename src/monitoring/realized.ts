import { label, type PrometheusWriter } from '../metrics/prometheus-writer.js'

/** Probabilities are clipped this far from 0 and 1 for the log loss (scikit-learn's default eps). */
const kLogLossEps = 1e-15
/** Scorecards kept (one per model role and version); the oldest goes first after many reloads. */
const kMaxScorecards = 8

export const kRoleNames = ['serving', 'shadow'] as const

/** Sums over a set of labelled bars; `fromSums` turns them into the reported figures. */
class Sums {
  n = 0
  hits = 0
  covered = 0
  coveredHits = 0
  brier = 0
  brierSq = 0
  logLoss = 0
  logLossSq = 0

  add (p: number, y: number, threshold: number): void {
    const up = p >= 0.5
    const hit = up === (y === 1)
    const conf = up ? p : 1 - p
    const b = (p - y) * (p - y)
    const q = p < kLogLossEps ? kLogLossEps : p > 1 - kLogLossEps ? 1 - kLogLossEps : p
    const ll = y === 1 ? -Math.log(q) : -Math.log(1 - q)
    this.n++
    if (hit) this.hits++
    if (conf >= threshold) { this.covered++; if (hit) this.coveredHits++ }
    this.brier += b
    this.brierSq += b * b
    this.logLoss += ll
    this.logLossSq += ll * ll
  }

  clear (): void {
    this.n = 0; this.hits = 0; this.covered = 0; this.coveredHits = 0
    this.brier = 0; this.brierSq = 0; this.logLoss = 0; this.logLossSq = 0
  }
}

export interface RealizedFigures {
  readonly labelled_bars: number
  readonly hit_rate: number | null
  readonly hit_rate_se: number | null
  readonly covered_bars: number
  readonly coverage: number | null
  readonly coverage_se: number | null
  readonly hit_rate_at_threshold: number | null
  readonly hit_rate_at_threshold_se: number | null
  readonly brier: number | null
  readonly brier_se: number | null
  readonly log_loss: number | null
  readonly log_loss_se: number | null
}

function rate (k: number, n: number): [number | null, number | null] {
  if (n === 0) return [null, null]
  const r = k / n
  return [r, Math.sqrt((r * (1 - r)) / n)]
}

/** Mean and standard error of the mean from a sum and a sum of squares (sample variance). */
function mean (sum: number, sumSq: number, n: number): [number | null, number | null] {
  if (n === 0) return [null, null]
  const m = sum / n
  if (n < 2) return [m, null]
  const v = Math.max(0, (sumSq - (sum * sum) / n) / (n - 1))
  return [m, Math.sqrt(v / n)]
}

function figures (s: Sums): RealizedFigures {
  const [hitRate, hitSe] = rate(s.hits, s.n)
  const [coverage, coverageSe] = rate(s.covered, s.n)
  const [atRate, atSe] = rate(s.coveredHits, s.covered)
  const [brier, brierSe] = mean(s.brier, s.brierSq, s.n)
  const [ll, llSe] = mean(s.logLoss, s.logLossSq, s.n)
  return {
    labelled_bars: s.n,
    hit_rate: hitRate,
    hit_rate_se: hitSe,
    covered_bars: s.covered,
    coverage,
    coverage_se: coverageSe,
    hit_rate_at_threshold: atRate,
    hit_rate_at_threshold_se: atSe,
    brier,
    brier_se: brierSe,
    log_loss: ll,
    log_loss_se: llSe,
  }
}

/** One model version in one role: since start, and over the last `window` labelled bars. */
class Scorecard {
  readonly role: number
  readonly version: string
  readonly lifetime = new Sums()
  ties = 0
  private readonly p: Float64Array
  private readonly y: Uint8Array
  private head = 0
  private count = 0

  constructor (role: number, version: string, window: number) {
    this.role = role
    this.version = version
    this.p = new Float64Array(window)
    this.y = new Uint8Array(window)
  }

  add (p: number, y: number, threshold: number): void {
    this.lifetime.add(p, y, threshold)
    const cap = this.p.length
    this.p[this.head] = p
    this.y[this.head] = y
    this.head = (this.head + 1) % cap
    if (this.count < cap) this.count++
  }

  /** The window's figures, summed afresh on each read (no drift from incremental subtraction). */
  window (threshold: number, into: Sums): Sums {
    into.clear()
    const cap = this.p.length
    for (let i = 0; i < this.count; i++) {
      const at = (this.head - 1 - i + cap) % cap
      into.add(this.p[at]!, this.y[at]!, threshold)
    }
    return into
  }
}

/**
 * Realized outcomes of the served predictions (docs/monitoring.md): each labelled bar scores the
 * prediction of the bar before it, per model role (serving, shadow) and version.
 */
export class RealizedOutcomes {
  private readonly windowBars: number
  readonly threshold: number
  private readonly cards = new Map<string, Scorecard>()
  private readonly scratch = new Sums()
  /** Bars closed with a prediction on record, and what became of them. */
  barsClosed = 0
  labelled = 0
  ties = 0
  /** The next bar was not the following one (a gap): no label, as in the training replay. */
  unlabelledGap = 0
  /** Closed and labelled, but no model answered for the bar (every request failed or timed out). */
  withoutPrediction = 0

  constructor (windowBars: number, threshold: number) {
    this.windowBars = windowBars
    this.threshold = threshold
  }

  score (role: number, version: string, p: number, y: number): void {
    this.card(role, version).add(p, y, this.threshold)
  }

  tie (role: number, version: string): void {
    this.card(role, version).ties++
  }

  private card (role: number, version: string): Scorecard {
    const key = `${role}\u0000${version}`
    let card = this.cards.get(key)
    if (card === undefined) {
      if (this.cards.size >= kMaxScorecards) this.cards.delete(this.cards.keys().next().value!)
      card = new Scorecard(role, version, this.windowBars)
      this.cards.set(key, card)
    }
    return card
  }

  json (): Record<string, unknown> {
    const models = []
    for (const card of this.cards.values()) {
      models.push({
        role: kRoleNames[card.role],
        model_version: card.version,
        ties: card.ties,
        window: figures(card.window(this.threshold, this.scratch)),
        lifetime: figures(card.lifetime),
      })
    }
    return {
      evaluation_threshold: this.threshold,
      window_bars: this.windowBars,
      bars: {
        closed: this.barsClosed,
        labelled: this.labelled,
        ties: this.ties,
        unlabelled_gap: this.unlabelledGap,
        without_prediction: this.withoutPrediction,
      },
      models,
    }
  }

  writePrometheus (w: PrometheusWriter): void {
    w.family('ml_realized_bars_total', 'counter', 'Closed bars with a prediction on record, by what became of their label')
    w.sample('ml_realized_bars_total', 'outcome="labelled"', this.labelled)
    w.sample('ml_realized_bars_total', 'outcome="tie"', this.ties)
    w.sample('ml_realized_bars_total', 'outcome="gap"', this.unlabelledGap)
    w.sample('ml_realized_bars_total', 'outcome="no_prediction"', this.withoutPrediction)
    w.family('ml_realized_threshold', 'gauge', 'evaluation_threshold: confidence at which the bot acts')
    w.sample('ml_realized_threshold', '', this.threshold)
    const rows: Array<[string, RealizedFigures]> = []
    for (const card of this.cards.values()) {
      const base = `${label('role', kRoleNames[card.role]!)},${label('model_version', card.version)}`
      rows.push([`${base},window="window"`, figures(card.window(this.threshold, this.scratch))])
      rows.push([`${base},window="lifetime"`, figures(card.lifetime)])
    }
    const gauges: Array<[keyof RealizedFigures, string, string]> = [
      ['labelled_bars', 'ml_realized_labelled_bars', 'Labelled bars scored'],
      ['hit_rate', 'ml_realized_hit_rate', 'Share of labelled bars whose direction (p >= 0.5 is up) was right'],
      ['hit_rate_se', 'ml_realized_hit_rate_stderr', 'Standard error of ml_realized_hit_rate'],
      ['covered_bars', 'ml_realized_covered_bars', 'Labelled bars whose confidence reached evaluation_threshold'],
      ['coverage', 'ml_realized_coverage', 'Share of labelled bars whose confidence reached evaluation_threshold'],
      ['coverage_se', 'ml_realized_coverage_stderr', 'Standard error of ml_realized_coverage'],
      ['hit_rate_at_threshold', 'ml_realized_hit_rate_at_threshold', 'Hit rate over the bars whose confidence reached evaluation_threshold'],
      ['hit_rate_at_threshold_se', 'ml_realized_hit_rate_at_threshold_stderr', 'Standard error of ml_realized_hit_rate_at_threshold'],
      ['brier', 'ml_realized_brier', 'Mean Brier score (p - label)^2'],
      ['brier_se', 'ml_realized_brier_stderr', 'Standard error of ml_realized_brier'],
      ['log_loss', 'ml_realized_log_loss', 'Mean log loss'],
      ['log_loss_se', 'ml_realized_log_loss_stderr', 'Standard error of ml_realized_log_loss'],
    ]
    for (const [key, name, help] of gauges) {
      w.family(name, 'gauge', `${help}; window="window" is the last evaluation_window labelled bars, "lifetime" since start`)
      for (const [labels, f] of rows) w.sample(name, labels, f[key] ?? Number.NaN)
    }
  }
}
