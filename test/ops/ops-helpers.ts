/**
 * Helpers for the operations tests: free loopback ports, finding Debian binaries (some live in
 * /usr/sbin, outside a non-root PATH), and external daemons started by a test and stopped by PID
 * in its teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { Test } from 'tap'

export const kRepoRoot = new URL('../../', import.meta.url).pathname

export { freePort } from '../../scripts/free-port.js'

/** Absolute path of an executable on PATH or in the sbin folders, or null. */
export function findBinary (name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin']
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch { /* next */ }
  }
  return null
}

export interface Daemon {
  readonly child: ChildProcess
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output (): string
  /** Why it is not running, or null while it runs. */
  exitReason (): string | null
  /** SIGTERM by PID, SIGKILL after 5 s; resolves when it has exited. Idempotent. */
  stop (): Promise<void>
}

/** Starts an external process and registers its stop (by PID) as the test's teardown. */
export function startDaemon (t: Test, command: string, args: string[], env: Record<string, string> = {}): Daemon {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.once('error', (err) => { output += `\nspawn error: ${err.message}` })
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      process.kill(child.pid!, 'SIGTERM')
      const timer = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL') } catch { /* gone */ } }, 5000)
      await exited
      clearTimeout(timer)
    })()
    return stopping
  }
  t.teardown(stop)
  const exitReason = (): string | null =>
    child.exitCode !== null || child.signalCode !== null ? `exited (${child.exitCode ?? child.signalCode}): ${output.trim().slice(-2000)}` : null
  return { child, output: () => output, exitReason, stop }
}

/**
 * Polls `probe` every `everyMs` until it returns a non-null value; fails after `timeoutMs`, or at
 * once when `fatal` returns a reason (e.g. the daemon being waited for has exited).
 */
export async function waitFor<T> (what: string, timeoutMs: number, probe: () => Promise<T | null>, fatal: () => string | null = () => null, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  for (;;) {
    const reason = fatal()
    if (reason !== null) throw new Error(`${what}: ${reason}`)
    try {
      const value = await probe()
      if (value !== null) return value
      last = null
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last === null ? '' : ` (last error: ${(last as Error).message}${(last as Error).cause === undefined ? "" : ` ${String((last as Error).cause)}`})`}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

export interface ServerProcess {
  readonly url: string
  readonly port: number
  readonly daemon: Daemon
}

/**
 * Starts the server as its own process from source (`node --import tsx src/cli/serve.ts`) on
 * 127.0.0.1 and an ephemeral port read back from its `listening` log line, for tests that must kill
 * a replica for real. Stopped by PID in the test's teardown.
 */
export async function startServerProcess (t: Test, env: Record<string, string> = {}): Promise<ServerProcess> {
  const daemon = startDaemon(t, process.execPath, ['--import', 'tsx', join(kRepoRoot, 'src/cli/serve.ts')], {
    HOST: '127.0.0.1', PORT: '0', WORKERS: '1', WARMUP_RUNS: '1', LOG_LEVEL: 'info', LOG_FILE: '', ...env,
  })
  const port = await waitFor('server process listening', 60_000, async () => {
    const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(daemon.output())
    return m === null ? null : Number(m[1])
  }, () => daemon.exitReason())
  return { url: `http://127.0.0.1:${port}`, port, daemon }
}
