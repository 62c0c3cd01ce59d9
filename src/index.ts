/**
 * Package entry: the client library, and the server for programs that embed it.
 */
import { configFromSettings, type RawSettings } from './config/load.js'
import { createLogger, type Logger } from './log/logger.js'
import { PredictionServer } from './server/app.js'

export * from './client/index.js'
export { PredictionServer } from './server/app.js'
export type { Config, RawSettings } from './config/load.js'
export { ServiceError, kErrorTable, type ErrorCode, type WireCode } from './errors.js'

/** Options of `createServer`: any setting of the README's table (snake_case), plus a logger. */
export interface CreateServerOptions extends Partial<RawSettings> {
  /** A pino logger; default: one built from `log_level` and `log_file`. */
  readonly logger?: Logger
}

/**
 * Starts a prediction server: validates the settings (a ConfigError lists every bad one), loads
 * the model, and listens. Resolves once it serves; `server.port` is the bound port (useful with
 * `port: 0`) and `server.close()` drains and stops it.
 *
 * ```ts
 * const server = await createServer({ port: 0, workers: 2 })
 * // ... http://127.0.0.1:${server.port}/predict, ws://127.0.0.1:${server.port}/ws
 * await server.close()
 * ```
 */
export async function createServer (options: CreateServerOptions = {}): Promise<PredictionServer> {
  const { logger, ...settings } = options
  const config = configFromSettings(settings)
  return PredictionServer.start(config, logger ?? createLogger(config.logLevel, config.logFile, config.logFormat))
}
