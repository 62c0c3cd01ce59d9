/**
 * The trading bot's rule for turning a prediction into a strategy signal, and its log lines.
 */
import type { Prediction } from './wire-codec.js'

/** A strategy signal as the bot aggregates them: score in [-1, 1], weighted. */
export interface Signal {
  readonly source: 'ml_xgboost'
  /** +confidence for LONG, -confidence for SHORT. */
  readonly score: number
  readonly weight: number
}

export interface SignalOptions {
  /** Predictions less confident than this give no signal. Default 0.55 (the bot's default). */
  readonly confidenceThreshold?: number
  /** The ML signal's weight among the bot's signals. Default 0.4. */
  readonly weight?: number
}

/**
 * The bot's signal rule: `{ source: 'ml_xgboost', score: ±confidence, weight }`, or null when
 * there is no prediction (fallback mode) or it is below the confidence threshold.
 */
export function toSignal (prediction: Prediction | null, options: SignalOptions = {}): Signal | null {
  if (prediction === null) return null
  const threshold = options.confidenceThreshold ?? 0.55
  if (!(prediction.confidence >= threshold)) return null
  return {
    source: 'ml_xgboost',
    score: prediction.direction === 'LONG' ? prediction.confidence : -prediction.confidence,
    weight: options.weight ?? 0.4,
  }
}

/** `ML signal: LONG (confidence: 0.72, latency: 6.5ms)`, the bot's line for an answered prediction. */
export function signalLogLine (prediction: Prediction, latencyMs: number): string {
  return `ML signal: ${prediction.direction} (confidence: ${prediction.confidence.toFixed(2)}, latency: ${latencyMs.toFixed(1)}ms)`
}

/** `ML prediction failed (fallback mode): timeout after 100ms`, the bot's line when it goes on without ML. */
export function fallbackLogLine (err: unknown): string {
  return `ML prediction failed (fallback mode): ${err instanceof Error ? err.message : String(err)}`
}
