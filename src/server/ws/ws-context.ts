/**
 * What every /ws connection of one server shares: the service, the outcome step, the limits, and
 * the scratch state decoding uses (decoding, the feature update and the row write are
 * synchronous, so one set serves all). WsServer creates it; connections read it. Kept apart from
 * ws-server.ts so that connections do not import the server (no import cycle).
 */
import { kFeatureNames, kFeatureSetVersion } from '../../features/feature-spec.js'
import { MarketSnapshot } from '../../features/market-snapshot.js'
import type { Logger } from '../../log/logger.js'
import type { DecodedRequest } from '../../protocol/json-request.js'
import type { HelloInfo } from '../../protocol/messages.js'
import { wsFormats, type WireFormat } from '../../protocol/ws-formats.js'
import type { PredictionService, TransportMetrics } from '../../service/prediction-service.js'
import { Outcomes } from '../outcome.js'

export interface WsOptions {
  /** Largest message accepted (max_body_bytes); larger ones close the connection with 1009. */
  readonly maxMessageBytes: number
  readonly maxBatchRequests: number
  readonly maxClockSkewMs: number
  readonly defaultSymbol: string
  /** Unanswered requests (batch items included) per connection. */
  readonly maxInFlight: number
  /** Buffered answer bytes past which new requests are refused with OVERLOADED. */
  readonly softBackpressureBytes: number
  /** Buffered answer bytes past which uWS closes the connection. */
  readonly maxBackpressureBytes: number
  readonly idleTimeoutSeconds: number
}

export class WsShared {
  readonly service: PredictionService
  readonly outcomes: Outcomes
  readonly options: WsOptions
  readonly log: Logger
  readonly snapshot = new MarketSnapshot()
  readonly decoded: DecodedRequest = { symbol: null, deadlineMs: Number.NaN }
  /** Reader and encoder per frame format, indexed by kFormatBinary / kFormatText. */
  readonly formats: readonly [WireFormat, WireFormat] = wsFormats()
  readonly tooManyInFlightMessage: string
  readonly backpressureMessage = 'Overloaded: answers are not being read (backpressure)'

  constructor (service: PredictionService, metrics: TransportMetrics, log: Logger, options: WsOptions) {
    this.service = service
    this.outcomes = new Outcomes(metrics)
    this.log = log
    this.options = options
    this.tooManyInFlightMessage = `Overloaded: more than ${options.maxInFlight} requests in flight on this connection`
  }

  helloInfo (): HelloInfo {
    return {
      modelVersion: this.service.currentModel?.modelVersion ?? null,
      featureSetVersion: kFeatureSetVersion,
      features: kFeatureNames,
      maxInFlight: this.options.maxInFlight,
      maxMessageBytes: this.options.maxMessageBytes,
      maxBatchRequests: this.options.maxBatchRequests,
      defaultSymbol: this.options.defaultSymbol,
    }
  }
}
