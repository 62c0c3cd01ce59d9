import type { BarTrack } from '../monitoring/bar-track.js'

/** Outcome of a queued request, set by the batcher before it calls the sink. */
export const kStatusPending = 0
export const kStatusOk = 1
export const kStatusDeadlineExceeded = 2
export const kStatusInternal = 3
/** Still queued when a shutdown's drain timed out: never reached the model. */
export const kStatusShuttingDown = 4
export type RequestStatus = typeof kStatusPending | typeof kStatusOk | typeof kStatusDeadlineExceeded | typeof kStatusInternal | typeof kStatusShuttingDown

/** The error code a transport answers for a request that did not end OK. */
export function failureCode (status: RequestStatus): 'ERR_DEADLINE_EXCEEDED' | 'ERR_SHUTTING_DOWN' | 'ERR_INFERENCE' {
  return status === kStatusDeadlineExceeded ? 'ERR_DEADLINE_EXCEEDED' : status === kStatusShuttingDown ? 'ERR_SHUTTING_DOWN' : 'ERR_INFERENCE'
}

/**
 * How one member of a model set (src/model/model-set.ts) took part in an answer:
 * `used` (its probability is in the weighted mean), `no_history` (a windowed member whose symbol
 * has fewer bars than its window: it could not answer this request) or `failed` (its worker failed
 * the batch). Left-out members have probability NaN and weight 0; the others' weights are
 * renormalized to sum to 1.
 */
export type ComponentStatus = 'used' | 'no_history' | 'failed'

/** One member's part in a set's answer. Built once per answer, never mutated: transports keep it. */
export interface Component {
  readonly modelVersion: string
  /** JSON-escaped modelVersion, computed once per loaded member. */
  readonly modelVersionJson: string
  /** The member's P(up) for this request; NaN when left out. */
  readonly probability: number
  /** The weight it had in this answer after renormalization; 0 when left out. */
  readonly weight: number
  readonly status: ComponentStatus
}

/** Whoever waits for answers: an HTTP response, a batch of them, a WebSocket connection. */
export interface PredictionSink {
  /** Called once per request. `request` is recycled when this returns: copy what you keep. */
  complete (request: PendingRequest): void
}

/**
 * One admitted request on its way through the batcher. Instances are pooled and reused, so every
 * field is initialised here and keeps its type (one hidden class on the hot path).
 */
export class PendingRequest {
  sink: PredictionSink | null = null
  /** The sink's own index for this request (position in a batch body, a WebSocket id...). */
  tag = 0
  symbol = ''
  /** performance.now() when the request was admitted. */
  admittedMs = 0
  /** performance.now() after which the request must not reach the model. */
  deadlineMs = 0
  /** performance.now() when its batch left for a worker. */
  dispatchedMs = 0
  status: RequestStatus = kStatusPending
  /** The model's probability of an up-move. */
  probability = Number.NaN
  /** JSON-escaped model version of the model that computed the answer. */
  modelVersionJson = ''
  modelVersion = ''
  /**
   * A model set's answer: each member's part, in the set's member order. Null for a single
   * model's answer (the phase-1 wire format, unchanged). The array is fresh per answer.
   */
  components: readonly Component[] | null = null
  /** Realized-outcome bookkeeping (monitoring/bar-track.ts): the symbol's track, bar and request seq. */
  track: BarTrack | null = null
  bar = -1
  seq = 0

  clear (): void {
    this.sink = null
    this.tag = 0
    this.symbol = ''
    this.status = kStatusPending
    this.probability = Number.NaN
    this.modelVersionJson = ''
    this.modelVersion = ''
    this.components = null
    this.track = null
  }
}
