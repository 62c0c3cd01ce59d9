/**
 * The server under test runs as its own process (STYLE B9; undici `benchmarks/wait.js`): started
 * here with a named set of flags, bound to 127.0.0.1 on an ephemeral port read from its
 * "listening" log line, waited for on /health/ready, and stopped by its PID (SIGTERM, then
 * SIGKILL after a bounded wait). Every process started here is tracked so that an interrupted
 * bench stops exactly those, and nothing else.
 *
 * CPU time and RSS come from /proc/<pid> (Linux), so a result can say how much of the machine the
 * server used during each load; elsewhere they are null.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { clockTicksPerSecond } from './system-info.js'

export type ServerKind = 'prediction' | 'bare'

/** A named server configuration: which program, with which flags. */
export interface ServerSpec {
  readonly name: string
  readonly kind: ServerKind
  /** Flags after --host/--port, e.g. ['--max-batch-size', '1']. */
  readonly flags: readonly string[]
  readonly description: string
  /** Run the build in `--baseline <dir>` (an earlier checkout) instead of this one. */
  readonly baseline?: boolean
}

export interface ServerStartOptions {
  readonly repoRoot: string
  /** 'src': node --import tsx src/cli/serve.ts (always the current code); 'dist': the build. */
  readonly build: 'src' | 'dist'
  /** taskset CPU list for the server (e.g. "1"), or null to leave scheduling to the OS. */
  readonly cpus: string | null
  readonly readyTimeoutMs: number
}

const kStopTimeoutMs = 20_000
const kKeptLogLines = 40

const live = new Set<ServerProcess>()

/** Stops every server this process started, by PID; for exit and signal paths. */
export async function stopAllServers (): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()))
}

export class ServerProcess {
  readonly spec: ServerSpec
  readonly command: readonly string[]
  readonly pid: number
  readonly host: string
  port: number
  /** The resolved settings from the server's "starting" log line (prediction server), or null. */
  settings: Record<string, unknown> | null
  private readonly child: ChildProcess
  private readonly logTail: string[]
  private exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private exitInfo: { code: number | null, signal: NodeJS.Signals | null } | null

  private constructor (spec: ServerSpec, command: readonly string[], child: ChildProcess) {
    this.spec = spec
    this.command = command
    this.pid = child.pid!
    this.host = '127.0.0.1'
    this.port = 0
    this.settings = null
    this.child = child
    this.logTail = []
    this.exitInfo = null
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        live.delete(this)
        resolve({ code, signal })
      })
    })
  }

  static commandFor (spec: ServerSpec, options: ServerStartOptions): string[] {
    const entry = spec.kind === 'bare'
      ? (options.build === 'dist' ? 'dist/bench/baseline/bare-uws-server.js' : 'bench/baseline/bare-uws-server.ts')
      : (options.build === 'dist' ? 'dist/src/cli/serve.js' : 'src/cli/serve.ts')
    const node = options.build === 'dist' ? [process.execPath, entry] : [process.execPath, '--import', 'tsx', entry]
    const pin = options.cpus === null ? [] : ['taskset', '-c', options.cpus]
    return [...pin, ...node, '--host', '127.0.0.1', '--port', '0', ...spec.flags]
  }

  static async start (spec: ServerSpec, options: ServerStartOptions): Promise<ServerProcess> {
    const command = ServerProcess.commandFor(spec, options)
    const entry = command.find((c) => c.endsWith('.ts') || c.endsWith('.js'))!
    if (!existsSync(join(options.repoRoot, entry))) {
      throw new Error(`${entry} does not exist${options.build === 'dist' ? ' (run npm run build first)' : ''}`)
    }
    const child = spawn(command[0]!, command.slice(1), {
      cwd: options.repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    if (child.pid === undefined) throw new Error(`could not start ${command.join(' ')}`)
    const server = new ServerProcess(spec, command, child)
    live.add(server)
    try {
      await server.waitListening(options.readyTimeoutMs)
      await server.waitReady(options.readyTimeoutMs)
    } catch (err) {
      await server.stop()
      throw new Error(`server "${spec.name}" did not start: ${(err as Error).message}\n` +
        `command: ${command.join(' ')}\nlast output:\n${server.logTail.join('\n')}`)
    }
    return server
  }

  get url (): string { return `http://${this.host}:${this.port}` }

  private waitListening (timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no "listening" log line after ${timeoutMs} ms`)) }, timeoutMs)
      const onLine = (line: string): void => {
        this.keep(line)
        if (!line.startsWith('{')) return
        let parsed: Record<string, unknown>
        try { parsed = JSON.parse(line) as Record<string, unknown> } catch { return }
        if (parsed.event === 'starting' && typeof parsed.settings === 'object') {
          this.settings = parsed.settings as Record<string, unknown>
        }
        if (parsed.event === 'listening' && typeof parsed.port === 'number' && this.port === 0) {
          this.port = parsed.port
          clearTimeout(timer)
          resolve()
        }
      }
      readLines(this.child.stdout!, onLine)
      readLines(this.child.stderr!, (line) => { this.keep(line) })
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(new Error(`exited (code ${code}, signal ${signal}) before listening`))
      })
    })
  }

  private async waitReady (timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    let last = ''
    while (performance.now() < deadline) {
      if (this.exitInfo !== null) throw new Error(`exited (code ${this.exitInfo.code}) before ready`)
      try {
        const res = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(2000) })
        await res.arrayBuffer()
        if (res.status === 200) return
        last = `status ${res.status}`
      } catch (err) {
        last = (err as Error).message
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`/health/ready not 200 after ${timeoutMs} ms (${last})`)
  }

  private keep (line: string): void {
    this.logTail.push(line)
    if (this.logTail.length > kKeptLogLines) this.logTail.shift()
  }

  /** User + system CPU time of the whole process (all threads) in ms, or null off Linux. */
  cpuTimeMs (): number | null {
    return processCpuTimeMs(this.pid)
  }

  /** Resident set size in kB, or null off Linux. */
  rssKb (): number | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8')
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
      return m === null ? null : Number(m[1])
    } catch {
      return null
    }
  }

  /** The last lines the process wrote (stdout and stderr), for notes when something went wrong. */
  get lastOutput (): readonly string[] { return this.logTail }

  /** SIGTERM (the server drains), then SIGKILL if it has not exited within the bound. By PID only. */
  async stop (): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    if (this.exitInfo !== null) return this.exitInfo
    try { process.kill(this.pid, 'SIGTERM') } catch { /* already gone */ }
    let timer: NodeJS.Timeout | null = null
    const killed = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(resolve, kStopTimeoutMs, true) }),
    ])
    if (timer !== null) clearTimeout(timer)
    if (killed) {
      try { process.kill(this.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    return this.exited
  }
}

export function processCpuTimeMs (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of stat)
    return (ticks * 1000) / clockTicksPerSecond()
  } catch {
    return null
  }
}

function readLines (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = ''
  stream.setEncoding('utf8')
  // Keep reading for the process's whole life: a full pipe would block the server's logger.
  stream.on('data', (chunk: string) => {
    rest += chunk
    let nl: number
    while ((nl = rest.indexOf('\n')) !== -1) {
      onLine(rest.slice(0, nl))
      rest = rest.slice(nl + 1)
    }
  })
}
