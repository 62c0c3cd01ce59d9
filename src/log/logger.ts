import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** JSON lines to stdout, and to `logFile` as well when set (the old service wrote logs/service.log). */
export function createLogger (level: LevelWithSilent, logFile: string | null): Logger {
  const options = { level, base: { service: 'ml-prediction-server' }, timestamp: pino.stdTimeFunctions.isoTime }
  if (logFile === null) return pino(options, pino.destination({ dest: 1, sync: false }))
  mkdirSync(dirname(logFile), { recursive: true })
  return pino(options, pino.multistream([
    { level, stream: pino.destination({ dest: 1, sync: false }) },
    { level, stream: pino.destination({ dest: logFile, sync: false, mkdir: true }) },
  ]))
}
