import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { pino, type DestinationStream, type Logger, type LevelWithSilent, type LoggerOptions } from 'pino'
import { kConfigProps, kRedacted, kSecretSettingKeys, type LogFormat } from '../config/schema.js'
import { ServiceError } from '../errors.js'

export type { Logger }

/** `auto` is pretty when a person is watching (stdout is a terminal), JSON for collectors and pipes. */
export function resolveLogFormat (format: LogFormat, stdoutIsTty: boolean = process.stdout.isTTY === true): 'json' | 'pretty' {
  return format === 'auto' ? (stdoutIsTty ? 'pretty' : 'json') : format
}

/**
 * Safety net under printableSettings(): a secret setting logged under its own name, at the top
 * level or one object down (`settings.admin_token`, `config.adminToken`), is censored by pino
 * whatever the caller passed. Request headers are never logged today; `authorization` is listed so
 * that a future debug line carrying them cannot leak the bearer token either.
 */
export const kRedactPaths: readonly string[] = Object.freeze(kSecretSettingKeys.flatMap((key) => {
  const names = [key, kConfigProps[key]]
  return names.flatMap((name) => [name, `*.${name}`])
}).concat(['authorization', '*.authorization', '*.headers.authorization']))

/**
 * Our own errors are expected outcomes with a stable code and a message that says what to do
 * (a missing model, a bad config): a stack trace and the HTTP mapping (statusCode, wireCode,
 * headers) only bury that message. Anything else is a bug, and keeps pino's full serialisation.
 */
export function serializeError (err: unknown): unknown {
  if (err instanceof ServiceError) {
    const cause = err.cause instanceof Error ? err.cause.message : undefined
    return { type: err.name, code: err.code, message: err.message, ...(cause !== undefined ? { cause } : {}) }
  }
  return err instanceof Error ? pino.stdSerializers.err(err) : err
}

/** What every logger of the service shares, whatever it writes to (exported for tests). */
export function loggerOptions (level: LevelWithSilent): LoggerOptions {
  return {
    level,
    base: { service: 'ml-prediction-server' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: serializeError },
    // null stays null: "no admin token" (admin routes off) is worth seeing and not a secret.
    redact: { paths: [...kRedactPaths], censor: (value: unknown) => value === null || value === undefined ? value : kRedacted },
  }
}

/**
 * Log lines to stdout, JSON or pretty (`format`), and to `logFile` as well when set, always as
 * JSON there (the old service wrote logs/service.log; files are for tools).
 *
 * Pretty output is pino-pretty used as a synchronous stream on this thread, not pino's transport
 * (a worker thread): a terminal gets a few lines a second at info level, the lines are written
 * before `process.exit` without a flush handshake (a start-up failure's line is the last thing the
 * process does), and no extra thread competes with the inference workers for the cores. In JSON
 * mode pino-pretty is not even loaded, so the serving path is exactly what it was.
 */
export function createLogger (level: LevelWithSilent, logFile: string | null, format: LogFormat = 'json'): Logger {
  const options = loggerOptions(level)
  const stdout = resolveLogFormat(format) === 'pretty' ? prettyStream() : pino.destination({ dest: 1, sync: false })
  if (logFile === null) return pino(options, stdout)
  mkdirSync(dirname(logFile), { recursive: true })
  return pino(options, pino.multistream([
    { level, stream: stdout },
    { level, stream: pino.destination({ dest: logFile, sync: false, mkdir: true }) },
  ]))
}

// pino-pretty is CommonJS and only needed in pretty mode: required on demand, synchronously.
const require = createRequire(import.meta.url)

function prettyStream (): DestinationStream {
  const pretty = require('pino-pretty') as typeof import('pino-pretty')
  return pretty({
    destination: 1,
    sync: true,
    // Colour only for a terminal (FORCE_COLOR / NO_COLOR are honoured by colorette as usual).
    colorize: process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
    translateTime: 'SYS:HH:MM:ss.l',
    // The message already says what the event is; service, pid and host are the same on every
    // line; `settings` is spelled out by messageFormat below.
    ignore: 'pid,hostname,service,event,settings',
    singleLine: true,
    // A function cannot cross into a transport's worker thread: another reason for the sync stream.
    messageFormat: (record, messageKey) => {
      const message = String(record[messageKey] ?? '')
      const settings = record.settings
      return typeof settings === 'object' && settings !== null ? `${message}: ${settingsText(settings as Record<string, unknown>)}` : message
    },
  })
}

/** `host=0.0.0.0 port=8000 ...`: the start-up settings as a person reads them. */
function settingsText (settings: Record<string, unknown>): string {
  return Object.entries(settings).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ')
}
