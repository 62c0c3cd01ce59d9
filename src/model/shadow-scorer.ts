import type { BatchObserver } from '../batching/dynamic-batcher.js'
import type { PendingRequest } from '../batching/pending-request.js'
import { kShadow, type BarTrack } from '../monitoring/bar-track.js'
import { kRowFloats } from '../features/row-layout.js'
import type { LoadedModel } from './model-loader.js'

export interface ShadowStats {
  readonly model_version: string
  readonly batches: number
  readonly rows: number
  /** Share of rows where the candidate's direction equals the serving model's. */
  readonly direction_agreement: number | null
  readonly mean_abs_diff: number | null
  readonly max_abs_diff: number | null
  /** Rows not scored because the candidate fell behind (it never slows the serving path). */
  readonly skipped_rows: number
  readonly failed_batches: number
}

/** What the scorer needs of the candidate: its own pool to run batches on, and its name. */
export type ShadowCandidate = Pick<LoadedModel, 'run' | 'workers' | 'modelVersion'>

/**
 * Batches that may await the candidate at once. A batch is at most max_batch_size rows (a few KB),
 * so a window this wide costs little memory, and it absorbs the candidate's pool being scheduled
 * later than the serving one on a busy machine; only a candidate that keeps falling behind is
 * sampled.
 */
export function defaultShadowWindow (workers: number): number { return Math.max(32, workers * 8) }

interface Pending {
  rows: number
  primary: Float32Array | null
  shadow: Float32Array | null
  /** The serving batch failed: nothing to compare, drop the entry when the candidate answers. */
  primaryFailed: boolean
}

/**
 * Scores a candidate model on live traffic beside the serving one, without changing answers:
 * every batch sent to the serving model is copied to the candidate's own worker pool, and when
 * both answered their probabilities are compared row by row. A candidate that falls behind is
 * sampled (batches skipped), never queued without bound.
 */
export class ShadowScorer<Candidate extends ShadowCandidate = LoadedModel> implements BatchObserver {
  readonly model: Candidate
  private readonly maxInFlight: number
  private readonly pending = new Map<number, Pending>()
  private nextTicket = 0
  private batches = 0
  private rows = 0
  private agreements = 0
  private absDiffSum = 0
  private maxAbsDiff = 0
  private skippedRows = 0
  private failedBatches = 0

  constructor (model: Candidate, maxInFlight = defaultShadowWindow(model.workers)) {
    this.model = model
    this.maxInFlight = maxInFlight
  }

  onDispatch (features: Float32Array, rows: number, requests?: ReadonlyArray<PendingRequest | null>): number {
    if (this.pending.size >= this.maxInFlight) {
      this.skippedRows += rows
      return -1
    }
    const buffer = new ArrayBuffer(features.byteLength)
    new Float32Array(buffer).set(features.subarray(0, rows * kRowFloats))
    const ticket = this.nextTicket++
    const entry: Pending = { rows, primary: null, shadow: null, primaryFailed: false }
    this.pending.set(ticket, entry)
    // Which symbol's bar each row belongs to, for the realized outcomes of the candidate (the
    // serving batch's requests are recycled before the candidate answers).
    let tracks: Array<BarTrack | null> | null = null
    let bars: Float64Array | null = null
    if (requests !== undefined) {
      tracks = new Array<BarTrack | null>(rows)
      bars = new Float64Array(rows * 2)
      for (let i = 0; i < rows; i++) {
        const req = requests[i]!
        tracks[i] = req.track
        bars[2 * i] = req.bar
        bars[2 * i + 1] = req.seq
      }
    }
    this.model.run(buffer, rows).then(
      (back) => {
        entry.shadow = new Float32Array(back, 0, rows)
        if (tracks !== null) {
          const version = this.model.modelVersion
          for (let i = 0; i < rows; i++) tracks[i]?.record(kShadow, bars![2 * i]!, bars![2 * i + 1]!, entry.shadow[i]!, version)
        }
        this.settle(ticket, entry)
      },
      () => { this.failedBatches++; this.pending.delete(ticket) },
    )
    return ticket
  }

  onResult (ticket: number, probabilities: Float32Array, rows: number): void {
    const entry = this.pending.get(ticket)
    if (entry === undefined) return
    entry.primary = probabilities.slice(0, rows)
    this.settle(ticket, entry)
  }

  onFailure (ticket: number): void {
    const entry = this.pending.get(ticket)
    if (entry === undefined) return
    entry.primaryFailed = true
    if (entry.shadow !== null) this.pending.delete(ticket)
  }

  private settle (ticket: number, entry: Pending): void {
    if (entry.primaryFailed && entry.shadow !== null) { this.pending.delete(ticket); return }
    if (entry.primary === null || entry.shadow === null) return
    this.pending.delete(ticket)
    const { primary, shadow, rows } = entry
    for (let i = 0; i < rows; i++) {
      const p = primary[i]!
      const q = shadow[i]!
      if ((p >= 0.5) === (q >= 0.5)) this.agreements++
      const d = Math.abs(p - q)
      this.absDiffSum += d
      if (d > this.maxAbsDiff) this.maxAbsDiff = d
    }
    this.rows += rows
    this.batches++
  }

  stats (): ShadowStats {
    const n = this.rows
    return {
      model_version: this.model.modelVersion,
      batches: this.batches,
      rows: n,
      direction_agreement: n === 0 ? null : Math.round((this.agreements / n) * 1e6) / 1e6,
      mean_abs_diff: n === 0 ? null : Math.round((this.absDiffSum / n) * 1e9) / 1e9,
      max_abs_diff: n === 0 ? null : Math.round(this.maxAbsDiff * 1e9) / 1e9,
      skipped_rows: this.skippedRows,
      failed_batches: this.failedBatches,
    }
  }
}
