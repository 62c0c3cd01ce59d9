import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { kFeatureSetVersion } from '../../features/feature-spec.js'
import type { ServiceMetrics } from '../../metrics/service-metrics.js'
import { round3 } from '../../protocol/answer-values.js'
import type { PredictionService } from '../../service/prediction-service.js'
import { writeJson } from './reply.js'

/** The model lifecycle as /health reports it (ModelManager). */
export interface ModelStatus {
  /** `detailed`: the caller sent the admin token; paths and error messages may be shown. */
  status (detailed: boolean): Record<string, unknown>
}

/** Whether a request carries the admin token; null when admin_token is off (nobody does). */
export type Authorize = ((req: HttpRequest) => boolean) | null

/**
 * /health keeps the old service's shape (status, model_loaded, model_version, uptime_seconds,
 * avg_latency_ms) and adds what operators need (workers, queue depth, symbols). /health/live says
 * the event loop answers; /health/ready says predictions can be served now (model loaded and
 * warm, not draining), which is what an orchestrator should route on.
 */
export class HealthRoutes {
  private readonly service: PredictionService
  private readonly metrics: ServiceMetrics
  private readonly modelStatus: ModelStatus
  private readonly authorize: Authorize

  constructor (service: PredictionService, metrics: ServiceMetrics, modelStatus: ModelStatus, authorize: Authorize) {
    this.service = service
    this.metrics = metrics
    this.modelStatus = modelStatus
    this.authorize = authorize
  }

  health (res: HttpResponse, req: HttpRequest): void {
    const model = this.service.currentModel
    const avg = this.metrics.meanLatencyMs()
    const body = {
      status: model === null ? 'unavailable' : this.service.isReady ? 'ok' : 'draining',
      model_loaded: model !== null,
      // The bot decodes these three into String/f64 (its MLClient's health struct) and refuses to
      // start when that fails: never null, whatever the state (the Python service said 0.0).
      model_version: model?.modelVersion ?? '',
      uptime_seconds: round3(this.metrics.uptimeSeconds()),
      avg_latency_ms: avg === null ? 0 : round3(avg),
      workers: model?.workers ?? 0,
      queue_depth: this.service.queueDepth,
      in_flight: this.service.pending,
      symbols: this.service.features.size,
      feature_set_version: kFeatureSetVersion,
      predictions_total: this.metrics.predictionsTotal,
      errors_total: this.metrics.errorsTotal,
      shutting_down: this.service.isShuttingDown,
      ...this.modelStatus.status(this.authorize !== null && this.authorize(req)),
      ...(model === null ? { detail: 'Model not loaded' } : {}),
    }
    writeJson(res, model === null ? 503 : 200, JSON.stringify(body), this.service.isDraining)
  }

  live (res: HttpResponse): void {
    writeJson(res, 200, '{"status":"alive"}', this.service.isDraining)
  }

  ready (res: HttpResponse): void {
    const model = this.service.currentModel
    if (model === null) {
      writeJson(res, 503, '{"status":"not_ready","detail":"Model not loaded"}', this.service.isDraining)
    } else if (!this.service.isReady) {
      writeJson(res, 503, '{"status":"not_ready","detail":"Shutting down"}', true)
    } else {
      writeJson(res, 200, `{"status":"ready","model_version":${model.modelVersionJson}}`, this.service.isDraining)
    }
  }
}
