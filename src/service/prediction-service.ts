import { performance } from 'node:perf_hooks'
import type { ErrorCode } from '../errors.js'
import { DynamicBatcher, type BatcherMetrics, type BatchObserver, type BatchRunner } from '../batching/dynamic-batcher.js'
import type { PredictionSink } from '../batching/pending-request.js'
import { FeatureStore } from '../features/feature-store.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { kApplyStale } from '../features/symbol-state.js'
import { kWindowCloses } from '../features/row-layout.js'

export const kSubmitted = 0
export const kRejectModelNotLoaded = 1
export const kRejectOverloaded = 2
export const kRejectShuttingDown = 3
/** timestamp_ms falls in a bar older than the symbol's current one. */
export const kRejectStale = 4
export type SubmitResult = typeof kSubmitted | typeof kRejectModelNotLoaded | typeof kRejectOverloaded | typeof kRejectShuttingDown | typeof kRejectStale

/** The error each transport answers for a refusal (stale is a validation issue, answered apart). */
export const kRejectCode: Readonly<Record<Exclude<SubmitResult, typeof kSubmitted | typeof kRejectStale>, ErrorCode>> = {
  [kRejectModelNotLoaded]: 'ERR_MODEL_NOT_LOADED',
  [kRejectOverloaded]: 'ERR_OVERLOADED',
  [kRejectShuttingDown]: 'ERR_SHUTTING_DOWN',
}

/** What a transport records per request, on the service's metrics. */
export interface TransportMetrics {
  recordRequest (serverUs: number): void
  recordPrediction (probabilityLong: number): void
  recordError (code: string): void
}

export interface PredictionServiceOptions {
  readonly barMs: number
  readonly maxGapBars: number
  readonly maxSymbols: number
  readonly defaultSymbol: string
  readonly deadlineMs: number
  readonly maxBatchSize: number
  readonly maxQueueSize: number
  readonly maxQueueDelayUs: number
}

/**
 * The one path from a decoded request to the model, shared by every transport:
 * admission (model loaded? queue bound? shutting down?) -> per-symbol feature update written
 * straight into the batch row -> dynamic batcher -> worker pool -> the caller's sink.
 *
 * Admission is decided before the feature state is touched, so a shed request changes no state.
 *
 * The model is only a `BatchRunner` here: which version serves, and its lifecycle, belong to the
 * model manager, which puts runners in with `setRunner`. The batcher stays private: callers get
 * the figures and operations they need from the methods below.
 */
export class PredictionService {
  readonly features: FeatureStore
  private readonly batcher: DynamicBatcher
  private readonly options: PredictionServiceOptions
  private model: BatchRunner | null = null
  private observerWindowed = false
  /** A windowed member serves or shadows: rows carry their window block (features/row-layout.ts). */
  private windows = false
  private shuttingDown = false
  private readinessWithdrawn = false

  constructor (options: PredictionServiceOptions, metrics: BatcherMetrics) {
    this.options = options
    this.features = new FeatureStore({ barMs: options.barMs, maxGapBars: options.maxGapBars, maxSymbols: options.maxSymbols })
    this.batcher = new DynamicBatcher({
      maxBatchSize: options.maxBatchSize,
      maxQueueSize: options.maxQueueSize,
      maxQueueDelayUs: options.maxQueueDelayUs,
    }, metrics)
  }

  /** The runner serving now (null while no model is loaded). */
  get currentModel (): BatchRunner | null { return this.model }
  get isShuttingDown (): boolean { return this.shuttingDown }
  /** False from the start of a shutdown: still serving during the grace period, but not ready. */
  get isReady (): boolean { return this.model !== null && !this.shuttingDown && !this.readinessWithdrawn }

  /** From the start of a graceful shutdown (grace period included): HTTP answers close their connection. */
  get isDraining (): boolean { return this.shuttingDown || this.readinessWithdrawn }

  /** Start of a graceful shutdown: readiness goes, serving continues until `drain`. */
  withdrawReadiness (): void { this.readinessWithdrawn = true }
  get defaultSymbol (): string { return this.options.defaultSymbol }

  /** Requests admitted and not yet answered: queued, or in a batch at a worker. */
  get pending (): number { return this.batcher.depth }
  /** Requests waiting for a worker. */
  get queueDepth (): number { return this.batcher.queueDepth }

  /** Puts a runner in service (null: none); batches already sent finish on the one it replaced. */
  setRunner (runner: BatchRunner | null): void {
    this.model = runner
    this.windows = this.windowsWanted()
    this.batcher.setRunner(runner)
  }

  /** Shows every batch to `observer` as well (shadow scoring); null stops. `windowed`: it reads windows. */
  setObserver (observer: BatchObserver | null, windowed = false): void {
    this.observerWindowed = observer !== null && windowed
    this.windows = this.windowsWanted()
    this.batcher.setObserver(observer)
  }

  /** Kept in `windows` rather than derived per request: `submit` reads it on every request. */
  private windowsWanted (): boolean { return (this.model?.windowed ?? false) || this.observerWindowed }

  /**
   * Admits one validated request. On `kSubmitted` the sink's `complete` is called exactly once,
   * later, with `tag`; on any other result nothing was queued and no state changed.
   * `clientDeadlineMs` (NaN for none) can only shorten the configured deadline.
   */
  submit (symbol: string | null, snapshot: MarketSnapshot, clientDeadlineMs: number, sink: PredictionSink, tag: number): SubmitResult {
    if (this.shuttingDown) return kRejectShuttingDown
    if (this.model === null) return kRejectModelNotLoaded
    const batcher = this.batcher
    if (!batcher.canAdmit()) return kRejectOverloaded
    const sym = symbol ?? this.options.defaultSymbol
    const rows = batcher.openRow()
    if (this.features.apply(sym, snapshot, Date.now(), rows, batcher.rowOffset()) === kApplyStale) return kRejectStale
    // The window block is ~1 KB of doubles: written only while a member reads it. Its count is
    // always written, so a row gathered before a windowed set swapped in reads as "no history".
    const windows = batcher.openWindows()
    const at = batcher.windowOffset()
    if (this.windows) this.features.lastState!.writeWindow(windows, at, kWindowCloses)
    else windows[at] = 0
    const now = performance.now()
    const req = batcher.acquire()
    req.sink = sink
    req.tag = tag
    req.symbol = sym
    const features = this.features
    if (features.listener !== null) {
      req.track = features.lastTrack
      req.bar = features.lastBar
      req.seq = features.lastSeq
    }
    req.admittedMs = now
    req.deadlineMs = now + (clientDeadlineMs < this.options.deadlineMs ? clientDeadlineMs : this.options.deadlineMs)
    batcher.commit(req)
    return kSubmitted
  }

  /** Stops admitting; resolves when every admitted request has been answered. */
  async drain (): Promise<void> {
    this.shuttingDown = true
    await this.batcher.whenIdle()
  }

  /**
   * Shutdown after the drain timed out: every request still queued is answered 503 "Shutting
   * down" now (batches at a worker are answered when it is closed).
   */
  abandonQueued (): void { this.batcher.abandonQueued() }
}
