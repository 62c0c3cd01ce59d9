import type { HttpResponse } from 'uWebSockets.js'
import { kPrometheusContentType, type ServiceMetrics } from '../../metrics/service-metrics.js'
import { writeJson } from './reply.js'

/** GET /metrics (JSON, the old service's shape extended) and GET /metrics/prometheus (text 0.0.4). */
export class MetricsRoutes {
  private readonly metrics: ServiceMetrics

  constructor (metrics: ServiceMetrics) {
    this.metrics = metrics
  }

  json (res: HttpResponse): void {
    writeJson(res, 200, JSON.stringify(this.metrics.toJSON()))
  }

  prometheus (res: HttpResponse): void {
    res.writeStatus('200 OK').writeHeader('Content-Type', kPrometheusContentType).end(this.metrics.toPrometheus())
  }
}
