/**
 * Helpers for the client tests: a logger that records lines, and the real server started as a
 * child process (`src/cli/serve.ts`), so that a test can freeze it (SIGSTOP), kill it (SIGKILL)
 * and start another on the same port, as an operator or a crash would.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import type { ClientLogger } from '../../src/client/index.js'

export class RecordingLogger implements ClientLogger {
  readonly lines: Array<{ level: 'info' | 'warn', message: string }> = []
  info (message: string): void { this.lines.push({ level: 'info', message }) }
  warn (message: string): void { this.lines.push({ level: 'warn', message }) }
  messages (): string[] { return this.lines.map(l => l.message) }
}

const kRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface ChildServer {
  readonly child: ChildProcess
  readonly port: number
  readonly url: string
  /** SIGKILL, and resolves once the process is gone. */
  kill (): Promise<void>
}

/** Starts `src/cli/serve.ts` on 127.0.0.1 (`port` 0: any) and resolves once it listens (60 s at most). */
export async function startChildServer (t: Test, port = 0): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts'], {
    cwd: kRoot,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), WORKERS: '1', WARMUP_RUNS: '1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const bound = await new Promise<number>((resolve, reject) => {
    // Generous: tsx, onnxruntime and the warm-up on a loaded CI machine; a normal start takes 2-3 s.
    const timer = setTimeout(() => { reject(new Error(`server did not listen within 60 s: ${stderr}`)) }, 60_000)
    let buffered = ''
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString()
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const entry = JSON.parse(line) as { event?: string, port?: number }
          if (entry.event === 'listening' && typeof entry.port === 'number') {
            clearTimeout(timer)
            resolve(entry.port)
          }
        } catch { /* not a log line */ }
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${String(code)}): ${stderr}`)) })
  })
  return { child, port: bound, url: `http://127.0.0.1:${bound}`, kill }
}

/** Resolves once `predicate` holds (checked every 10 ms), rejects after `timeoutMs`. */
export async function waitFor (predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
