import type { Logger } from 'pino'

/**
 * Every line the service logs, named, with a fixed level and message, so that messages are
 * reviewable in one place. Client mistakes are debug, never error; per-request lines stay off
 * the hot path unless the level asks for them.
 */
export const logEvents = {
  /** `settings`: printableSettings(config), snake_case and with secrets redacted. */
  starting (log: Logger, settings: Record<string, unknown>): void {
    log.info({ event: 'starting', settings }, 'Starting ML prediction service')
  },
  configWarning (log: Logger, problem: string): void {
    log.warn({ event: 'config_warning' }, problem)
  },
  /**
   * The one line a failed start prints (src/cli/serve.ts): what failed and what to do, no stack.
   * `code` is the stable error code when the failure is one of ours.
   */
  startupFailed (log: Logger, code: string | null, message: string): void {
    log.fatal({ event: 'startup_failed', ...(code !== null ? { code } : {}) }, `Start-up failed: ${message}`)
  },
  modelLoaded (log: Logger, modelVersion: string, modelPath: string, workers: number, loadMs: number): void {
    log.info({ event: 'model_loaded', model_version: modelVersion, model_path: modelPath, workers, load_ms: loadMs }, `Model loaded: ${modelVersion} (${workers} workers, ${loadMs} ms)`)
  },
  modelLoadFailed (log: Logger, modelPath: string, err: unknown): void {
    log.error({ event: 'model_load_failed', model_path: modelPath, err }, `Model could not be loaded: ${(err as Error).message}`)
  },
  modelSwapped (log: Logger, from: string, to: string, trigger: string, loadMs: number): void {
    log.info({ event: 'model_swapped', from, to, trigger, load_ms: loadMs }, `Model swapped: ${from} -> ${to} (${trigger}, loaded and warmed in ${loadMs} ms)`)
  },
  modelKept (log: Logger, version: string, trigger: string): void {
    log.warn({ event: 'model_kept', model_version: version, trigger }, `Reload (${trigger}) failed: ${version} keeps serving`)
  },
  shadowStarted (log: Logger, version: string, modelPath: string, loadMs: number): void {
    log.info({ event: 'shadow_started', model_version: version, model_path: modelPath, load_ms: loadMs }, `Shadow model ${version} scoring live traffic`)
  },
  workerError (log: Logger, err: unknown): void {
    log.error({ event: 'worker_error', err }, `Inference worker error: ${(err as Error)?.message ?? String(err)}`)
  },
  /** require_model is off and the start-up load failed: one line with the reason (model_load_failed is not logged then). */
  modelNotLoadedServing (log: Logger, reason: string): void {
    log.warn({ event: 'model_not_loaded', reason }, `Serving without a model (${reason}): predictions answer 503 Model not loaded`)
  },
  listening (log: Logger, host: string, port: number): void {
    log.info({ event: 'listening', host, port }, `ML prediction service listening on http://${host}:${port}`)
  },
  shuttingDown (log: Logger, signal: string, inFlight: number): void {
    log.info({ event: 'shutting_down', signal, in_flight: inFlight }, `Shutting down on ${signal}: answering ${inFlight} in-flight requests`)
  },
  shutdownComplete (log: Logger, ms: number): void {
    log.info({ event: 'shutdown_complete', ms }, `Shutdown complete in ${ms} ms`)
  },
  shutdownTimedOut (log: Logger, pending: number): void {
    log.warn({ event: 'shutdown_timeout', pending }, `Shutdown timed out with ${pending} requests unanswered`)
  },
  stateRestored (log: Logger, path: string, r: { restored: number, stale: number, overLimit: number, bytes: number, ms: number, savedAtMs: number }): void {
    log.info({ event: 'state_restored', path, symbols: r.restored, stale: r.stale, over_limit: r.overLimit, bytes: r.bytes, load_ms: r.ms, saved_at: new Date(r.savedAtMs).toISOString() },
      `Feature state restored: ${r.restored} symbols (${r.stale} too old, ${r.overLimit} over max_symbols) in ${r.ms} ms`)
  },
  stateAbsent (log: Logger, path: string): void {
    log.info({ event: 'state_absent', path }, `No feature state file at ${path}: starting with no history`)
  },
  stateRefused (log: Logger, path: string, reason: string, message: string): void {
    log.warn({ event: 'state_refused', path, reason, code: 'ERR_STATE_FILE' }, `Feature state file refused (${reason}): ${message}; starting with no history`)
  },
  stateSaved (log: Logger, path: string, trigger: string, symbols: number, bytes: number, ms: number): void {
    // Periodic saves are routine: debug, so that a 60 s interval does not fill the log.
    const fields = { event: 'state_saved', path, trigger, symbols, bytes, save_ms: ms }
    const message = `Feature state saved (${trigger}): ${symbols} symbols, ${bytes} bytes in ${ms} ms`
    if (trigger === 'periodic') log.debug(fields, message)
    else log.info(fields, message)
  },
  stateSaveFailed (log: Logger, path: string, trigger: string, err: unknown): void {
    log.warn({ event: 'state_save_failed', path, trigger, err }, `Feature state could not be saved (${trigger}): ${(err as Error)?.message ?? String(err)}`)
  },
  batchFailed (log: Logger, rows: number, err: unknown): void {
    log.error({ event: 'batch_failed', rows, err }, `Inference failed for a batch of ${rows}: ${(err as Error)?.message ?? String(err)}`)
  },
  internalError (log: Logger, route: string, err: unknown): void {
    log.error({ event: 'internal_error', route, err }, `Internal error on ${route}`)
  },
}
