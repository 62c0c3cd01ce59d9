import { performance } from 'node:perf_hooks'
import type { Logger } from '../log/logger.js'
import { logEvents } from '../log/log-events.js'

/** The parts a shutdown stops, each seen only through what the shutdown does to it. */
export interface ShutdownParts {
  readonly service: {
    /** Requests admitted and not yet answered. */
    readonly pending: number
    withdrawReadiness (): void
    /** Stops admitting; resolves when every admitted request has been answered. */
    drain (): Promise<void>
    abandonQueued (): void
  }
  readonly models: {
    /** Stops watching and reloading, closes the shadow. */
    close (): Promise<void>
    /** Takes the serving model out and closes its workers (`force`: terminate them now). */
    closeServing (force: boolean): Promise<void>
  }
  /** Writes the bars still waiting for their label to the capture (capture_dir) and stops it. */
  closeMonitor (): Promise<void>
  /** Saves the feature state one last time and stops the periodic saves (state_file), or null. */
  readonly stateKeeper: { stop (): Promise<void> } | null
  /** Stops accepting connections (nothing when the server was not listening). */
  stopListening (): void
  /** Closes the open /ws connections. */
  closeConnections (): void
  /** Closes the HTTP app (and the keep-alive connections it still holds). */
  closeApp (): void
  /** Stops the metrics timers. */
  closeMetrics (): void
}

export interface ShutdownOptions {
  /** shutdown_grace_ms: readiness answers 503 this long before the listener closes. */
  readonly graceMs: number
  /** shutdown_timeout_ms: the longest the drain may take before what is left is abandoned. */
  readonly timeoutMs: number
  /** Whether a listener was open: the grace period only makes sense for a server that served. */
  readonly listening: boolean
  /** Set after a failed start: nothing was served, so the shutting-down lines are not logged. */
  readonly quiet: boolean
}

/**
 * Graceful shutdown, in this order: readiness answers 503 and serving goes on for the grace
 * period (load balancers stop sending before anything is refused); the listener closes; every
 * admitted request is answered (bounded by shutdown_timeout_ms; past it, queued requests get 503
 * "Shutting down" and the workers are terminated); the feature state is saved (state_file); then
 * the connections, the model manager, the app, the serving model's workers and the metrics close.
 */
export async function shutdown (parts: ShutdownParts, options: ShutdownOptions, log: Logger, signal: string): Promise<void> {
  const started = performance.now()
  const { service, models } = parts
  if (!options.quiet) logEvents.shuttingDown(log, signal, service.pending)
  if (options.graceMs > 0 && options.listening) {
    service.withdrawReadiness()
    await new Promise(resolve => setTimeout(resolve, options.graceMs))
  }
  parts.stopListening()
  let timer: NodeJS.Timeout | null = null
  const timedOut = await Promise.race([
    service.drain().then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(resolve, options.timeoutMs, true) }),
  ])
  if (timer !== null) clearTimeout(timer)
  if (timedOut) {
    // A session may be hung: answer what is left before the connections close. Queued
    // requests get 503 "Shutting down", batches at a worker 500, and the threads are killed.
    logEvents.shutdownTimedOut(log, service.pending)
    service.abandonQueued()
    await models.closeServing(true)
    await new Promise(resolve => setImmediate(resolve))
  }
  // After the drain: features are updated when a request is admitted, and from here none can
  // be, so the saved state (and the capture) includes every request answered (or abandoned) above.
  await parts.closeMonitor()
  await parts.stateKeeper?.stop()
  parts.closeConnections()
  await models.close()
  parts.closeApp()
  // Once per shutdown: after a timeout the workers were terminated above, before the save.
  if (!timedOut) await models.closeServing(false)
  parts.closeMetrics()
  if (!options.quiet) logEvents.shutdownComplete(log, Math.round(performance.now() - started))
}
