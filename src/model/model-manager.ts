import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { BatchObserver, BatchRunner } from '../batching/dynamic-batcher.js'
import type { Config } from '../config/schema.js'
import { ServiceError, type ErrorCode } from '../errors.js'
import type { Logger } from '../log/logger.js'
import { logEvents } from '../log/log-events.js'
import { label, type PrometheusWriter } from '../metrics/prometheus-writer.js'
import { loadModel, type LoadedModel } from './model-loader.js'
import { isSetPath, loadModelSet, type LoadedSet, type MemberStats } from './model-set.js'
import { metadataPathFor } from './model-metadata.js'

/** What serves: one model, or a model set (model-set.ts). */
export type ServingModel = LoadedModel | LoadedSet
import { ShadowScorer, type ShadowStats } from './shadow-scorer.js'

export type ReloadOutcome =
  | { readonly ok: true, readonly model_version: string, readonly previous_version: string | null, readonly load_ms: number }
  | { readonly ok: false, readonly code: ErrorCode, readonly error: string, readonly model_version: string | null }

/**
 * Where the manager puts models to work: the prediction service, seen only through what the
 * manager needs, so that the model side does not depend on the service.
 */
export interface ModelHost {
  /** From the start of a shutdown: no model is loaded any more. */
  readonly isShuttingDown: boolean
  setRunner (runner: BatchRunner | null): void
  /** `windowed`: the observer's model reads the rows' window blocks. */
  setObserver (observer: BatchObserver | null, windowed?: boolean): void
}

/** How long file events must be quiet before a watched model is reloaded (copies arrive in pieces). */
const kWatchDebounceMs = 1000

/**
 * Owns which model serves. A new version is loaded, validated (feature list, input shape, probe
 * prediction) and warmed in its own worker pool beside the serving one, then swapped in: new
 * batches go to it at once, batches already sent finish on the old pool, which is closed after.
 * Every answer names the version that computed it. A broken or mismatched model leaves the old
 * one serving and is reported in the logs and in /health (`model_error`, a code; the message with the admin token).
 *
 * Loads are serialized: a reload asked for during another waits for it, so two loads never race
 * to the swap.
 */
export class ModelManager {
  private readonly config: Config
  private readonly host: ModelHost
  private readonly log: Logger
  private currentPath: string
  /** The serving model; this manager loads, swaps and closes it, the host only runs it. */
  private current: ServingModel | null = null
  private chain: Promise<unknown> = Promise.resolve()
  /** A reload waiting behind the one in progress; later asks for the same file share it. */
  private queuedReload: { readonly path: string, promise: Promise<ReloadOutcome> | null } | null = null
  private shadow: ShadowScorer<ServingModel> | null = null
  private watcher: FSWatcher | null = null
  private watchTimer: NodeJS.Timeout | null = null
  private closed = false
  lastError: string | null = null
  /** Stable code of the last failed load (ERR_MODEL_LOAD...), for /health without credentials. */
  lastErrorCode: ErrorCode | null = null
  lastReloadAt: string | null = null
  reloadsOk = 0
  reloadsFailed = 0
  /** Reload requests answered by a reload already queued for the same file. */
  reloadsCoalesced = 0

  constructor (config: Config, host: ModelHost, log: Logger) {
    this.config = config
    this.host = host
    this.log = log
    this.currentPath = config.modelPath
  }

  get modelPath (): string { return this.currentPath }
  /** The serving model, null while none is loaded. */
  get serving (): ServingModel | null { return this.current }
  /** Folder whose files the admin routes may name: the one holding the configured model. */
  get modelsDir (): string { return dirname(this.config.modelPath) }

  /** Start-up: load the configured model (and shadow). Throws unless require_model is off. */
  async loadInitial (): Promise<void> {
    const outcome = await this.reload(this.config.modelPath, 'startup')
    if (!outcome.ok) {
      // The caller reports this once (serve.ts: one line, exit 1); doReload logged nothing for it.
      if (this.config.requireModel) {
        throw new ServiceError(outcome.code, `${outcome.error}; or set require_model=false to start without a model`)
      }
      logEvents.modelNotLoadedServing(this.log, outcome.error)
    }
    if (this.config.shadowModelPath !== null) await this.setShadow(this.config.shadowModelPath)
    if (this.config.watchModels) this.startWatching()
  }

  /**
   * Loads `modelPath` (default: the serving model's file again) and swaps it in if it is sound.
   *
   * Requests are coalesced: while a reload runs, any number of requests for the same file (50
   * SIGHUPs from a deploy script) share one queued reload, which starts after the running one and
   * so still sees the newest file. At most one load runs and one waits.
   */
  reload (modelPath: string = this.currentPath, trigger = 'admin'): Promise<ReloadOutcome> {
    const queued = this.queuedReload
    if (queued !== null && queued.path === modelPath && queued.promise !== null) {
      this.reloadsCoalesced++
      return queued.promise
    }
    const entry: { readonly path: string, promise: Promise<ReloadOutcome> | null } = { path: modelPath, promise: null }
    entry.promise = this.serialize(() => {
      if (this.queuedReload === entry) this.queuedReload = null
      return this.doReload(modelPath, trigger)
    })
    this.queuedReload = entry
    return entry.promise
  }

  /** Starts scoring a candidate beside the serving model (null stops it). */
  setShadow (modelPath: string | null): Promise<ReloadOutcome> {
    return this.serialize(async () => {
      const previous = this.shadow
      if (modelPath === null) {
        this.shadow = null
        this.host.setObserver(null)
        if (previous !== null) this.closeLater(previous.model)
        return { ok: true, model_version: '', previous_version: previous?.model.modelVersion ?? null, load_ms: 0 } as const
      }
      const started = performance.now()
      try {
        // One worker: the candidate must not take CPU from the serving path.
        const model = await this.load(modelPath, 'shadow')
        this.shadow = new ShadowScorer(model)
        this.host.setObserver(this.shadow, model.windowed)
        if (previous !== null) this.closeLater(previous.model)
        const loadMs = Math.round(performance.now() - started)
        logEvents.shadowStarted(this.log, model.modelVersion, modelPath, loadMs)
        return { ok: true, model_version: model.modelVersion, previous_version: previous?.model.modelVersion ?? null, load_ms: loadMs } as const
      } catch (err) {
        logEvents.modelLoadFailed(this.log, modelPath, err)
        return failure(err, this.shadow?.model.modelVersion ?? null)
      }
    })
  }

  shadowStats (): ShadowStats | null { return this.shadow?.stats() ?? null }

  startWatching (): void {
    if (this.watcher !== null) return
    const dir = dirname(this.currentPath)
    this.watcher = watch(dir, (_event, filename) => {
      if (filename === null || this.closed) return
      if (!this.watchedNames().has(filename)) return
      if (this.watchTimer !== null) clearTimeout(this.watchTimer)
      this.watchTimer = setTimeout(() => {
        this.watchTimer = null
        void this.reload(this.currentPath, 'watch')
      }, kWatchDebounceMs)
    })
    this.watcher.on('error', (err) => { this.log.warn({ event: 'watch_failed', err }, `Watching ${dir} failed`) })
  }

  /**
   * What /health shows about the model lifecycle. Without credentials only the file's name and a
   * stable error code: the absolute path and the loader's message (which quotes paths) tell an
   * anonymous caller about the host's layout. `detailed` (the admin token was sent) adds both.
   */
  status (detailed: boolean): Record<string, unknown> {
    return {
      model_file: basename(this.currentPath),
      model_error: this.lastErrorCode,
      ...(detailed ? { model_path: this.currentPath, model_error_detail: this.lastError } : {}),
      last_reload_at: this.lastReloadAt,
      reloads: { ok: this.reloadsOk, failed: this.reloadsFailed },
      shadow: this.shadowStats(),
    }
  }

  /** The serving set's members and what their answers counted; null when a single model serves. */
  setStats (): { set_version: string, members: MemberStats[] } | null {
    const serving = this.current
    if (serving === null || !('memberStats' in serving)) return null
    return { set_version: serving.modelVersion, members: serving.memberStats() }
  }

  metricsJson (): Record<string, unknown> {
    return {
      model_reloads: { ok: this.reloadsOk, failed: this.reloadsFailed, coalesced: this.reloadsCoalesced },
      shadow: this.shadowStats(),
      model_set: this.setStats(),
    }
  }

  writePrometheus (w: PrometheusWriter): void {
    w.family('ml_model_reloads_total', 'counter', 'Model loads since start, by outcome')
    w.sample('ml_model_reloads_total', 'outcome="ok"', this.reloadsOk)
    w.sample('ml_model_reloads_total', 'outcome="failed"', this.reloadsFailed)
    w.family('ml_model_reloads_coalesced_total', 'counter', 'Reload requests that joined a reload already queued for the same file')
    w.sample('ml_model_reloads_coalesced_total', '', this.reloadsCoalesced)
    const set = this.setStats()
    if (set !== null) {
      w.family('ml_set_member_rows_total', 'counter', 'Rows each member of the serving model set answered (used), could not answer (no_history) or failed')
      for (const m of set.members) {
        const member = label('member', m.model_version)
        w.sample('ml_set_member_rows_total', `${member},outcome="used"`, m.rows_used)
        w.sample('ml_set_member_rows_total', `${member},outcome="no_history"`, m.rows_no_history)
        w.sample('ml_set_member_rows_total', `${member},outcome="failed"`, m.rows_failed)
      }
      w.family('ml_set_member_weight', 'gauge', 'Declared weight of each member of the serving model set')
      for (const m of set.members) w.sample('ml_set_member_weight', label('member', m.model_version), m.weight)
      w.family('ml_set_member_workers', 'gauge', 'Worker threads of each member of the serving model set')
      for (const m of set.members) w.sample('ml_set_member_workers', label('member', m.model_version), m.workers)
    }
    const s = this.shadowStats()
    if (s === null) return
    const version = label('model_version', s.model_version)
    w.family('ml_shadow_rows_total', 'counter', 'Rows scored by the shadow (candidate) model')
    w.sample('ml_shadow_rows_total', version, s.rows)
    w.family('ml_shadow_skipped_rows_total', 'counter', 'Rows the shadow model skipped because it fell behind')
    w.sample('ml_shadow_skipped_rows_total', version, s.skipped_rows)
    w.family('ml_shadow_direction_agreement_ratio', 'gauge', 'Share of rows where the shadow model agrees on direction')
    w.sample('ml_shadow_direction_agreement_ratio', version, s.direction_agreement ?? Number.NaN)
    w.family('ml_shadow_mean_abs_diff', 'gauge', 'Mean absolute difference of probability_long, shadow vs serving')
    w.sample('ml_shadow_mean_abs_diff', version, s.mean_abs_diff ?? Number.NaN)
  }

  /** Stops watching, waits for a load in progress, closes the shadow. The serving model: `closeServing`. */
  async close (): Promise<void> {
    this.closed = true
    if (this.watchTimer !== null) clearTimeout(this.watchTimer)
    this.watcher?.close()
    this.watcher = null
    await this.chain.catch(() => {})
    const shadow = this.shadow
    this.shadow = null
    this.host.setObserver(null)
    if (shadow !== null) await shadow.model.close()
  }

  /**
   * Takes the serving model out of service and closes its workers. `force` (a shutdown whose drain
   * timed out): terminate them now, failing the batches they hold, instead of letting them finish.
   */
  async closeServing (force = false): Promise<void> {
    const model = this.current
    this.current = null
    this.host.setRunner(null)
    if (model !== null) await model.close(force)
  }

  private serialize<T> (work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work)
    this.chain = next.catch(() => {})
    return next
  }

  /** `spinUs`: the serving pool polls as configured; a shadow candidate never does (its core is the serving path's). */
  /**
   * A shadow candidate gets one worker (per member, whatever its set file says) and never polls:
   * it must not take CPU from the serving path.
   */
  private load (modelPath: string, role: 'serving' | 'shadow' = 'serving'): Promise<ServingModel> {
    const shadow = role === 'shadow'
    const options = {
      barMs: this.config.barMs,
      workers: shadow ? 1 : this.config.workers,
      workerSpinUs: shadow ? 0 : this.config.workerSpinUs,
      maxBatchSize: this.config.maxBatchSize,
      warmupRuns: this.config.warmupRuns,
      transport: this.config.workerTransport,
      onWorkerError: (err: unknown) => { logEvents.workerError(this.log, err) },
    }
    if (!isSetPath(modelPath)) return loadModel({ ...options, modelPath })
    // A set's threads are its members' `workers` (default 1 each), not the server's `workers`.
    return loadModelSet({ ...options, setPath: modelPath, ...(shadow ? { memberWorkers: 1 } : {}) })
  }

  /**
   * File names in the models folder whose change reloads the serving model: its .onnx and .json,
   * or a set's file and every member's .onnx and .json.
   */
  private watchedNames (): Set<string> {
    const names = new Set<string>([basename(this.currentPath)])
    const serving = this.current
    const models: readonly LoadedModel[] = serving === null ? [] : 'models' in serving ? serving.models : [serving]
    if (!isSetPath(this.currentPath)) names.add(basename(metadataPathFor(this.currentPath)))
    for (const m of models) {
      names.add(basename(m.modelPath))
      names.add(basename(metadataPathFor(m.modelPath)))
    }
    return names
  }

  private async doReload (modelPath: string, trigger: string): Promise<ReloadOutcome> {
    const previous = this.current
    if (this.closed || this.host.isShuttingDown) {
      return { ok: false, code: 'ERR_SHUTTING_DOWN', error: 'the server is shutting down', model_version: previous?.modelVersion ?? null }
    }
    const started = performance.now()
    let model: ServingModel
    try {
      model = await this.load(modelPath)
    } catch (err) {
      this.lastError = (err as Error).message
      this.lastErrorCode = err instanceof ServiceError ? err.code : 'ERR_MODEL_LOAD'
      this.reloadsFailed++
      // At start-up the failure is reported by loadInitial's caller (require_model) or by
      // model_not_loaded: a second line about the same file would only repeat it.
      if (trigger !== 'startup') logEvents.modelLoadFailed(this.log, modelPath, err)
      if (previous !== null) logEvents.modelKept(this.log, previous.modelVersion, trigger)
      return failure(err, previous?.modelVersion ?? null)
    }
    if (this.closed || this.host.isShuttingDown) {
      await model.close()
      return { ok: false, code: 'ERR_SHUTTING_DOWN', error: 'the server is shutting down', model_version: previous?.modelVersion ?? null }
    }
    this.current = model
    this.host.setRunner(model)
    this.currentPath = modelPath
    this.lastError = null
    this.lastErrorCode = null
    this.lastReloadAt = new Date().toISOString()
    this.reloadsOk++
    const loadMs = Math.round(performance.now() - started)
    if (previous === null) {
      logEvents.modelLoaded(this.log, model.modelVersion, modelPath, model.workers, loadMs)
    } else {
      logEvents.modelSwapped(this.log, previous.modelVersion, model.modelVersion, trigger, loadMs)
      this.closeLater(previous)
    }
    return { ok: true, model_version: model.modelVersion, previous_version: previous?.modelVersion ?? null, load_ms: loadMs }
  }

  /** Closes a retired pool once its in-flight batches are answered (Piscina's close waits for them). */
  private closeLater (model: ServingModel): void {
    model.close().catch((err: unknown) => { logEvents.workerError(this.log, err) })
  }
}

function failure (err: unknown, servingVersion: string | null): ReloadOutcome {
  const code: ErrorCode = err instanceof ServiceError ? err.code : 'ERR_MODEL_LOAD'
  return { ok: false, code, error: (err as Error).message, model_version: servingVersion }
}
