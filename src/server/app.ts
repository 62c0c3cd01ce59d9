import * as uws from 'uWebSockets.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log/logger.js'
import { logEvents } from '../log/log-events.js'
import { StateKeeper } from '../features/state-keeper.js'
import { ServiceMetrics } from '../metrics/service-metrics.js'
import { ModelManager, type ReloadOutcome } from '../model/model-manager.js'
import { Monitor } from '../monitoring/monitor.js'
import { PredictionService } from '../service/prediction-service.js'
import { AdminRoutes } from './http/admin-routes.js'
import { DocsRoutes } from './http/docs-routes.js'
import { HealthRoutes } from './http/health-routes.js'
import { MetricsRoutes } from './http/metrics-routes.js'
import { PredictRoutes } from './http/predict-routes.js'
import { writeError, writeMethodNotAllowed } from './http/reply.js'
import { WsServer, wsOptionsFrom } from './ws/ws-server.js'
import { shutdown } from './shutdown.js'

/** LIBUS_LISTEN_EXCLUSIVE_PORT (index.mjs exports it; index.d.mts declares it only inside a non-exported enum). */
const kListenExclusivePort = 1

/**
 * The running service: uWS front end, prediction service, model pool, metrics. Transports only
 * decode, call the service, and encode; nothing below the service sees a uWS object.
 */
export class PredictionServer {
  readonly config: Config
  readonly service: PredictionService
  readonly metrics: ServiceMetrics
  readonly log: Logger
  readonly models: ModelManager
  /** Realized outcomes, feature drift and capture_dir (docs/monitoring.md). */
  readonly monitor: Monitor
  private readonly app: uws.TemplatedApp
  private listenSocket: uws.us_listen_socket | null = null
  private boundPort = 0
  private closing: Promise<void> | null = null
  private wsServer: WsServer | null = null
  /** Saves and restores the feature state when state_file is set. */
  private readonly stateKeeper: StateKeeper | null
  /** Set when start() fails: close() then logs nothing. */
  private quietClose = false

  /**
   * Built in dependency order: metrics (which the batcher records into), the service, the model
   * manager (which puts models into the service), then the gauges that metrics read from both.
   */
  private constructor (config: Config, log: Logger) {
    this.config = config
    this.log = log
    const metrics = new ServiceMetrics({ processMetrics: true, windowMs: config.metricsWindowS * 1000 })
    const service = new PredictionService({
      barMs: config.barMs,
      maxGapBars: config.maxGapBars,
      maxSymbols: config.maxSymbols,
      defaultSymbol: config.defaultSymbol,
      deadlineMs: config.deadlineMs,
      maxBatchSize: config.maxBatchSize,
      maxQueueSize: config.maxQueueSize,
      maxQueueDelayUs: config.maxQueueDelayUs,
    }, {
      recordQueueWait: (us) => { metrics.recordQueueWait(us) },
      recordBatch: (rows, us) => { metrics.recordBatch(rows, us) },
      recordBatchFailure: (rows, err) => { logEvents.batchFailed(log, rows, err) },
    })
    const models = new ModelManager(config, service, log)
    const monitor = new Monitor(config, log, () => models.serving)
    service.features.listener = monitor
    metrics.observe({
      queueDepth: () => service.queueDepth,
      workers: () => service.currentModel?.workers ?? 0,
      modelVersion: () => service.currentModel?.modelVersion ?? null,
      symbols: () => service.features.size,
      symbolsEvicted: () => service.features.evictions,
      extra: {
        json: () => ({ ...models.metricsJson(), ...monitor.metricsJson() }),
        prometheus: (w) => { models.writePrometheus(w); monitor.writePrometheus(w) },
      },
    })
    this.metrics = metrics
    this.service = service
    this.models = models
    this.monitor = monitor
    this.stateKeeper = config.stateFile === null
      ? null
      : new StateKeeper(service.features, config.stateFile, config.stateSaveIntervalS, log)
    this.app = this.buildApp()
  }

  /** Restores the feature state, loads the model (unless allowed to start without one), then listens. */
  static async start (config: Config, log: Logger): Promise<PredictionServer> {
    const server = new PredictionServer(config, log)
    try {
      // Before listening: the first request of a restored symbol must see its history.
      await server.stateKeeper?.restore()
      await server.models.loadInitial()
      await server.listen()
      server.stateKeeper?.start()
    } catch (err) {
      // Nothing was served: release the workers and the app without the shutting-down lines,
      // so that the caller's report of `err` is the only thing a failed start prints.
      server.quietClose = true
      await server.close()
      throw err
    }
    return server
  }

  get port (): number { return this.boundPort }

  /** Open /ws connections. */
  get webSocketCount (): number { return this.wsServer?.connectionCount ?? 0 }

  /** Reloads the serving model (SIGHUP, admin route, file watch); the old one serves until the swap. */
  reloadModel (modelPath?: string, trigger = 'signal'): Promise<ReloadOutcome> {
    return this.models.reload(modelPath, trigger)
  }

  private buildApp (): uws.TemplatedApp {
    const app = uws.App()
    const predict = new PredictRoutes(this.service, this.metrics, {
      maxBodyBytes: this.config.maxBodyBytes,
      maxBatchRequests: this.config.maxBatchRequests,
      maxClockSkewMs: this.config.maxClockSkewMs,
      onInternalError: (err) => { logEvents.internalError(this.log, '/predict', err) },
    })
    const admin = this.config.adminToken === null ? null : new AdminRoutes(this.models, this.config.adminToken)
    const health = new HealthRoutes(this.service, this.metrics, this.models, admin === null ? null : (req) => admin.authorized(req))
    const metrics = new MetricsRoutes(this.metrics)

    app.post('/predict', (res, req) => { predict.single(res, req) })
    app.post('/predict/batch', (res, req) => { predict.batch(res, req) })
    app.get('/health', (res, req) => { health.health(res, req) })
    app.get('/health/live', (res) => { health.live(res) })
    app.get('/health/ready', (res) => { health.ready(res) })
    app.get('/metrics', (res) => { metrics.json(res) })
    app.get('/metrics/prometheus', (res) => { metrics.prometheus(res) })
    // Known paths with another method: 405 with Allow; anything else: 404 (FastAPI's bodies).
    for (const [path, allow] of [
      ['/predict', 'POST'], ['/predict/batch', 'POST'], ['/health', 'GET'], ['/health/live', 'GET'],
      ['/health/ready', 'GET'], ['/metrics', 'GET'], ['/metrics/prometheus', 'GET'],
    ] as const) {
      app.any(path, (res) => { this.metrics.recordError('ERR_METHOD_NOT_ALLOWED'); writeMethodNotAllowed(res, allow, this.service.isDraining) })
    }
    // /openapi.json, /asyncapi.json, /schemas/prediction.fbs, /docs: built once here (docs-routes.ts).
    new DocsRoutes(this.config).register(app, () => { this.metrics.recordError('ERR_METHOD_NOT_ALLOWED') }, () => this.service.isDraining)
    if (admin !== null) {
      app.post('/admin/reload', (res, req) => { admin.reload(res, req) })
      app.post('/admin/shadow', (res, req) => { admin.startShadow(res, req) })
      app.del('/admin/shadow', (res, req) => { admin.stopShadow(res, req) })
    }
    this.wsServer = new WsServer(this.service, this.metrics, this.log, wsOptionsFrom(this.config))
    app.ws('/ws', this.wsServer.behavior())
    app.any('/*', (res) => { this.metrics.recordError('ERR_NOT_FOUND'); writeError(res, 'ERR_NOT_FOUND', undefined, this.service.isDraining) })
    return app
  }

  private listen (): Promise<void> {
    const { host, port } = this.config
    return new Promise((resolve, reject) => {
      // uWS listens with SO_REUSEPORT unless told otherwise: a second server started on the same
      // port would then silently share its connections, each with its own per-symbol feature
      // state. Exclusive: the second one fails to start instead. (The (host, port, options, cb)
      // form exists in the native binding but not in its type declarations.)
      const listen = this.app.listen as unknown as (h: string, p: number, o: number, cb: (token: uws.us_listen_socket | false) => void) => void
      listen.call(this.app, host, port, kListenExclusivePort, (token) => {
        if (token === false) {
          // Not logged here: the rejection is the report (serve.ts prints it as its one line).
          reject(new Error(`could not listen on ${host}:${port} (in use, or not an address of this machine)`))
          return
        }
        this.listenSocket = token
        this.boundPort = uws.us_socket_local_port(token)
        logEvents.listening(this.log, host, this.boundPort)
        resolve()
      })
    })
  }

  /**
   * Graceful shutdown (src/server/shutdown.ts): readiness 503, grace, stop accepting, answer
   * every admitted request (bounded by shutdown_timeout_ms), save the feature state (state_file),
   * then close the connections and the workers. Idempotent.
   */
  close (signal = 'close'): Promise<void> {
    this.closing ??= this.doClose(signal)
    return this.closing
  }

  private doClose (signal: string): Promise<void> {
    return shutdown({
      service: this.service,
      models: this.models,
      stateKeeper: this.stateKeeper,
      closeMonitor: () => this.monitor.close(this.service.features),
      stopListening: () => {
        if (this.listenSocket === null) return
        uws.us_listen_socket_close(this.listenSocket)
        this.listenSocket = null
      },
      closeConnections: () => { this.wsServer?.closeAll() },
      closeApp: () => { this.app.close() },
      closeMetrics: () => { this.metrics.close() },
    }, {
      graceMs: this.config.shutdownGraceMs,
      timeoutMs: this.config.shutdownTimeoutMs,
      listening: this.listenSocket !== null,
      quiet: this.quietClose,
    }, this.log, signal)
  }
}
