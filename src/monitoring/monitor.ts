import type { Config } from '../config/schema.js'
import { kFeatureCount } from '../features/feature-spec.js'
import type { BarListener, FeatureStore } from '../features/feature-store.js'
import { MarketSnapshot } from '../features/market-snapshot.js'
import type { SymbolState } from '../features/symbol-state.js'
import type { Logger } from '../log/logger.js'
import type { PrometheusWriter } from '../metrics/prometheus-writer.js'
import type { ModelMetadata } from '../model/model-metadata.js'

/** What the monitor reads of the serving model (a single model or a set). */
interface ServingInfo { readonly metadata: ModelMetadata, readonly modelVersion: string }
import { kBookSlot, kBtcSlot, kFeatureSlot, kFundingSlot, kServing, kShadow, type BarTrack } from './bar-track.js'
import { CaptureWriter } from './capture-writer.js'
import { DriftMonitor } from './drift.js'
import { RealizedOutcomes } from './realized.js'

/**
 * What the server learns from the bars it served (docs/monitoring.md): when a symbol's bar closes
 * (a request opens a later bar), the closed bar's prediction waits for the next bar's close, its
 * label; the bar before it is scored now (RealizedOutcomes), written to the capture files
 * (CaptureWriter, with capture_dir) and its feature row goes to the drift window (DriftMonitor).
 * All of it runs once per closed bar per symbol, on the main thread, never per request.
 */
export class Monitor implements BarListener {
  readonly realized: RealizedOutcomes
  readonly drift: DriftMonitor
  readonly capture: CaptureWriter | null
  private readonly barMs: number
  private readonly servingModel: () => ServingInfo | null
  private readonly scratch = new MarketSnapshot()
  private readonly row = new Float32Array(kFeatureCount)
  private referenceSource: unknown = undefined

  constructor (config: Config, log: Logger, servingModel: () => ServingInfo | null) {
    this.barMs = config.barMs
    this.servingModel = servingModel
    this.realized = new RealizedOutcomes(config.evaluationWindow, config.evaluationThreshold)
    this.drift = new DriftMonitor(config.driftWindow)
    this.capture = config.captureDir === null
      ? null
      : new CaptureWriter({
        dir: config.captureDir,
        maxBytes: config.captureMaxBytes,
        maxAgeS: config.captureMaxAgeS,
        fileS: config.captureFileS,
        warn: (code, message) => { log.warn({ event: 'capture_failed', code }, message) },
        symbols: config.maxSymbols,
      })
    this.capture?.start()
  }

  barClosing (symbol: string, state: SymbolState): void {
    const track = state.track
    // A bar restored from the state file and not requested since: nothing was served in it here.
    if (track === null) return
    const bar = state.barIndex
    const close = state.close
    if (track.prevBar >= 0) {
      if (track.prevBar === bar - 1) this.label(track, close > track.prevClose ? 1 : close < track.prevClose ? 0 : -1)
      else this.realized.unlabelledGap++
      this.realized.barsClosed++
      this.emit(symbol, track)
    }
    // The closed bar as served: candle, BTC, the latest request's book and funding, its feature row.
    const s = this.scratch
    s.price = close
    s.bidVolume = track.bidVolume
    s.askVolume = track.askVolume
    s.bestBid = track.bestBid
    s.bestAsk = track.bestAsk
    s.bidDepth5 = track.bidDepth5
    s.askDepth5 = track.askDepth5
    s.fundingRate = track.fundingRate
    state.featuresNow(s, this.row, 0)
    const r = track.prevRow
    r[0] = bar * this.barMs
    r[1] = state.open
    r[2] = state.high
    r[3] = state.low
    r[4] = close
    r[5] = state.volume
    r[kBtcSlot] = state.btc
    r[kBookSlot] = track.bidVolume
    r[kBookSlot + 1] = track.askVolume
    r[kBookSlot + 2] = track.bestBid
    r[kBookSlot + 3] = track.bestAsk
    r[kBookSlot + 4] = track.bidDepth5
    r[kBookSlot + 5] = track.askDepth5
    r[kFundingSlot] = track.fundingRate
    r.set(this.row, kFeatureSlot)
    this.drift.push(this.row, 0)
    track.shift(bar, close)
  }

  evicted (symbol: string, state: SymbolState): void {
    const track = state.track
    if (track !== null && track.prevBar >= 0) this.emit(symbol, track)
  }

  /** Scores the waiting bar's predictions with `y` (1 up, 0 down, -1 tie: no label, as in training). */
  private label (track: BarTrack, y: number): void {
    const realized = this.realized
    if (y < 0) realized.ties++
    else realized.labelled++
    let any = false
    for (const which of [kServing, kShadow]) {
      const p = track.prevProbability(which)
      if (p !== p) continue
      any = true
      if (y < 0) realized.tie(which, track.prevVersion[which])
      else realized.score(which, track.prevVersion[which], p, y)
    }
    if (!any && y >= 0) realized.withoutPrediction++
  }

  private emit (symbol: string, track: BarTrack): void {
    const serving = track.prevProbability(kServing)
    const shadow = track.prevProbability(kShadow)
    this.capture?.push(symbol, track.prevRow, serving, serving === serving ? track.prevVersion[kServing] : '',
      shadow, shadow === shadow ? track.prevVersion[kShadow] : '')
    track.prevBar = -1
  }

  /**
   * Shutdown, after the drain: every closed bar still waiting for its label is written unlabelled
   * (its label would come after this process), then the capture files are flushed.
   */
  async close (features: FeatureStore): Promise<void> {
    for (const [symbol, state] of features.entries()) this.evicted(symbol, state)
    await this.capture?.close()
  }

  /** The drift reference follows the serving model (its metadata's feature_reference). */
  private syncReference (): void {
    const model = this.servingModel()
    const raw = model?.metadata.feature_reference
    if (raw === this.referenceSource) return
    this.referenceSource = raw
    this.drift.setReference(raw, model?.modelVersion ?? null)
  }

  metricsJson (): Record<string, unknown> {
    this.syncReference()
    return {
      realized: this.realized.json(),
      drift: this.drift.json(),
      capture: this.capture?.json() ?? null,
    }
  }

  writePrometheus (w: PrometheusWriter): void {
    this.syncReference()
    this.realized.writePrometheus(w)
    this.drift.writePrometheus(w)
    const c = this.capture
    if (c === null) return
    w.family('ml_capture_rows_total', 'counter', 'Closed bars written to the capture files')
    w.sample('ml_capture_rows_total', '', c.rowsWritten)
    w.family('ml_capture_rows_dropped_total', 'counter', 'Closed bars not captured (write failed, or the ring was full)')
    w.sample('ml_capture_rows_dropped_total', '', c.rowsDropped)
    w.family('ml_capture_bytes_total', 'counter', 'Compressed bytes appended to the capture files')
    w.sample('ml_capture_bytes_total', '', c.bytesWritten)
    w.family('ml_capture_files_deleted_total', 'counter', 'Capture files deleted by the size and age limits')
    w.sample('ml_capture_files_deleted_total', '', c.filesDeleted)
    w.family('ml_capture_errors_total', 'counter', 'Failed capture writes, by error code (ENOSPC: disk full, EACCES/ENOTDIR: folder unwritable)')
    for (const [code, n] of c.errors) w.sample('ml_capture_errors_total', `code="${code.replace(/[^A-Z0-9_]/g, '_')}"`, n)
  }
}
