/**
 * Process entry: `npm start` (built) or `npm run dev` (from source).
 *
 * Loads and validates the configuration (exit 2 with every problem named), starts the server
 * (exit 1 when the model cannot be loaded and require_model is on, or the port cannot be bound),
 * drains on SIGTERM / SIGINT (stop accepting, answer what is in flight, exit 0), and reloads the
 * model on SIGHUP.
 */
import { loadConfig, isHelpRequested, envNearMisses } from '../config/load.js'
import { printableSettings, renderHelp } from '../config/schema.js'
import { ServiceError } from '../errors.js'
import { createLogger, resolveLogFormat } from '../log/logger.js'
import { logEvents } from '../log/log-events.js'
import { PredictionServer } from '../server/app.js'

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (isHelpRequested(argv)) {
    process.stdout.write(renderHelp())
    return
  }
  let config
  try {
    config = loadConfig({ argv, env: process.env })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(2)
  }
  const log = createLogger(config.logLevel, config.logFile, config.logFormat)
  logEvents.starting(log, printableSettings(config))
  for (const problem of envNearMisses(process.env)) logEvents.configWarning(log, problem)
  let server: PredictionServer
  try {
    server = await PredictionServer.start(config, log)
  } catch (err) {
    // One line says what failed and what to do. The stack helps only with a bug, never with a
    // missing model or a taken port, so it goes to debug.
    const code = err instanceof ServiceError ? err.code : null
    const message = (err as Error).message
    log.debug({ event: 'startup_failed_detail', stack: (err as Error).stack }, 'Start-up failure detail')
    logEvents.startupFailed(log, code, message)
    log.flush()
    // A terminal already shows the pretty line above; JSON on stdout is for a collector, so a
    // person reading stderr (or the exit of `docker run`) gets the message in plain words there.
    if (resolveLogFormat(config.logFormat) === 'json' || !log.isLevelEnabled('fatal')) {
      process.stderr.write(`Start-up failed: ${code !== null ? `${code}: ` : ''}${message}\n`)
    }
    process.exit(1)
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    server.close(signal).then(
      () => { log.flush(); process.exit(0) },
      (err: unknown) => { log.error({ err }, 'shutdown failed'); log.flush(); process.exit(1) },
    )
  }
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })
  // SIGHUP: load the model file again (after a retrain wrote it) and swap it in without downtime.
  process.on('SIGHUP', () => { void server.reloadModel(undefined, 'SIGHUP') })
}

void main()
