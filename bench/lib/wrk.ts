/**
 * The cross-check: the same HTTP load through `wrk` (Debian package, C, epoll), on the same
 * server in the same run, so that the bench's own generator is judged against an independent one
 * (issue 5: throughput and p50 within 20%). wrk is closed loop with latency from the actual send,
 * so it is compared with the bench's closed-loop scenario of the same shape (-t1 -c64, /predict).
 *
 * wrk runs as a child process, bounded in time (its -d plus a margin) and stopped by its PID.
 */

import { spawn } from 'node:child_process'
import { commandExists } from './system-info.js'

export interface WrkOptions {
  readonly url: string
  readonly script: string
  readonly threads: number
  readonly connections: number
  readonly durationS: number
  readonly timeoutS: number
  /** taskset CPU list, or null. */
  readonly cpus: string | null
}

export interface WrkResult {
  readonly command: readonly string[]
  readonly requests: number
  readonly seconds: number
  /** wrk's Requests/sec: every answer, 2xx or not. */
  readonly requestsPerSec: number
  readonly latencyUs: { readonly p50: number | null, readonly p75: number | null, readonly p90: number | null, readonly p99: number | null, readonly mean: number | null, readonly max: number | null }
  readonly non2xx3xx: number
  readonly socketErrors: { readonly connect: number, readonly read: number, readonly write: number, readonly timeout: number }
  readonly raw: string
}

export function wrkAvailable (): boolean {
  return commandExists('wrk')
}

export function wrkCommand (o: WrkOptions): string[] {
  const pin = o.cpus === null ? [] : ['taskset', '-c', o.cpus]
  return [...pin, 'wrk', `-t${o.threads}`, `-c${o.connections}`, `-d${Math.max(1, Math.round(o.durationS))}s`,
    `--timeout`, `${Math.max(1, Math.round(o.timeoutS))}s`, '-s', o.script, '--latency', o.url]
}

export async function runWrk (o: WrkOptions): Promise<WrkResult> {
  const command = wrkCommand(o)
  const raw = await new Promise<string>((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }, (o.durationS + 15) * 1000)
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`wrk exited with ${code}: ${err.trim() || out.trim()}`))
    })
  })
  return { command, ...parseWrkOutput(raw), raw }
}

export function parseWrkOutput (raw: string): Omit<WrkResult, 'command' | 'raw'> {
  const num = (re: RegExp): number | null => {
    const m = re.exec(raw)
    return m === null ? null : Number(m[1])
  }
  const dist = (pct: string): number | null => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(raw)
    return m === null ? null : toUs(Number(m[1]), m[2]!)
  }
  const stat = /^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+[\d.]+(?:us|ms|s|m)\s+([\d.]+)(us|ms|s|m)/m.exec(raw)
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(raw)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw)
  return {
    requests: done === null ? 0 : Number(done[1]),
    seconds: done === null ? 0 : toUs(Number(done[2]), done[3]!) / 1e6,
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/) ?? 0,
    latencyUs: {
      p50: dist('50'),
      p75: dist('75'),
      p90: dist('90'),
      p99: dist('99'),
      mean: stat === null ? null : toUs(Number(stat[1]), stat[2]!),
      max: stat === null ? null : toUs(Number(stat[3]), stat[4]!),
    },
    non2xx3xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
    socketErrors: sock === null
      ? { connect: 0, read: 0, write: 0, timeout: 0 }
      : { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) },
  }
}

function toUs (value: number, unit: string): number {
  switch (unit) {
    case 'us': return Math.round(value)
    case 'ms': return Math.round(value * 1e3)
    case 's': return Math.round(value * 1e6)
    default: return Math.round(value * 60e6)
  }
}

/** Several wrk rounds as one: counts add, rate = all requests / all seconds, latencies the rounds' median. */
export function aggregateWrk (rounds: readonly WrkResult[]): WrkResult {
  if (rounds.length === 1) return rounds[0]!
  const med = (pick: (w: WrkResult) => number | null): number | null => {
    const v = rounds.map(pick).filter((x): x is number => x !== null).sort((a, b) => a - b)
    return v.length === 0 ? null : v[Math.floor((v.length - 1) / 2)]!
  }
  const requests = rounds.reduce((a, w) => a + w.requests, 0)
  const seconds = rounds.reduce((a, w) => a + w.seconds, 0)
  return {
    command: rounds[0]!.command,
    requests,
    seconds,
    requestsPerSec: seconds > 0 ? requests / seconds : 0,
    latencyUs: {
      p50: med((w) => w.latencyUs.p50), p75: med((w) => w.latencyUs.p75), p90: med((w) => w.latencyUs.p90),
      p99: med((w) => w.latencyUs.p99), mean: med((w) => w.latencyUs.mean),
      max: Math.max(...rounds.map((w) => w.latencyUs.max ?? 0)),
    },
    non2xx3xx: rounds.reduce((a, w) => a + w.non2xx3xx, 0),
    socketErrors: {
      connect: rounds.reduce((a, w) => a + w.socketErrors.connect, 0),
      read: rounds.reduce((a, w) => a + w.socketErrors.read, 0),
      write: rounds.reduce((a, w) => a + w.socketErrors.write, 0),
      timeout: rounds.reduce((a, w) => a + w.socketErrors.timeout, 0),
    },
    raw: rounds.map((w) => w.raw).join('\n---\n'),
  }
}
