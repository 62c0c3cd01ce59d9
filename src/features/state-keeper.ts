import type { Logger } from 'pino'
import { StateFileError } from '../errors.js'
import { logEvents } from '../log/log-events.js'
import type { FeatureStore } from './feature-store.js'
import { loadFeatureState, saveFeatureState } from './state-file.js'

/**
 * Owns the state file of one server (state_file): restores it before the server listens, saves it
 * every state_save_interval_s while serving, and once more at shutdown after the drain. Nothing
 * here throws: a refused or unwritable file costs history, never the service.
 */
export class StateKeeper {
  private readonly store: FeatureStore
  private readonly path: string
  private readonly intervalMs: number
  private readonly log: Logger
  private timer: NodeJS.Timeout | null = null
  private saving: Promise<void> | null = null
  /** Saves happen only once the server has served: a start that failed must not overwrite the file. */
  private serving = false

  constructor (store: FeatureStore, path: string, intervalS: number, log: Logger) {
    this.store = store
    this.path = path
    this.intervalMs = intervalS * 1000
    this.log = log
  }

  /** Before listening; the store must be empty. */
  async restore (): Promise<void> {
    try {
      const result = await loadFeatureState(this.store, this.path)
      if (result === null) logEvents.stateAbsent(this.log, this.path)
      else logEvents.stateRestored(this.log, this.path, { ...result, ms: Math.round(result.ms) })
    } catch (err) {
      if (err instanceof StateFileError) logEvents.stateRefused(this.log, this.path, err.reason, err.message)
      else logEvents.stateRefused(this.log, this.path, 'unreadable', (err as Error).message)
    }
  }

  /** Once listening: from now on the state is worth saving. */
  start (): void {
    this.serving = true
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => { this.savePeriodic() }, this.intervalMs)
      // The shutdown save is the one that matters; a pending tick must not keep the process alive.
      this.timer.unref()
    }
  }

  private savePeriodic (): void {
    // A save still writing (a slow disk) is not queued behind: the next tick takes a newer state.
    if (this.saving !== null) return
    this.saving = this.save('periodic').finally(() => { this.saving = null })
  }

  /**
   * Stops the timer, lets a periodic save finish, then saves the final state. Called after the
   * drain, when no admitted request can still change a symbol.
   */
  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.saving !== null) await this.saving
    if (!this.serving) return
    this.serving = false
    await this.save('shutdown')
  }

  private async save (trigger: string): Promise<void> {
    try {
      const r = await saveFeatureState(this.store, this.path)
      logEvents.stateSaved(this.log, this.path, trigger, r.symbols, r.bytes, Math.round(r.ms))
    } catch (err) {
      logEvents.stateSaveFailed(this.log, this.path, trigger, err)
    }
  }
}
