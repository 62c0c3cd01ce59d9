/**
 * The client library: what the trading bot (or any TypeScript program) imports to talk to the
 * prediction server.
 */
export { PredictionClient, type CallOptions, type ClientLogger, type PredictionClientOptions } from './prediction-client.js'
export { backoffDelayMs, type ReconnectOptions } from './connection.js'
export {
  ClientClosedError, ClientDisconnectedError, ClientInvalidRequestError, ClientTimeoutError,
  PredictionClientError, RemoteError, type ClientErrorCode,
} from './errors.js'
export type { HealthCheckResult } from './http-transport.js'
export { fallbackLogLine, signalLogLine, toSignal, type Signal, type SignalOptions } from './signal.js'
export {
  type ComponentStatus, decodeServerBinary, decodeServerText, FbClientCodec, type Prediction, type PredictionComponent, type PredictionRequest,
  type PredictionResult, type ServerHello, type ServerMessage,
} from './wire-codec.js'
