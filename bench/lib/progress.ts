/**
 * The progress display: one live line on a terminal (rewritten in place), one line per finished
 * step otherwise (CI logs, pipes). Written to stderr so that stdout carries only the report.
 */

import type { LoadProgress } from './load-generator.js'

export class Progress {
  private readonly stream: NodeJS.WriteStream
  private readonly live: boolean
  private readonly enabled: boolean
  private readonly runStarted: number
  private stepNumber: number
  private label: string

  constructor (enabled: boolean, stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream
    this.enabled = enabled
    this.live = enabled && stream.isTTY === true
    this.runStarted = Date.now()
    this.stepNumber = 0
    this.label = ''
  }

  begin (label: string): void {
    this.stepNumber++
    this.label = label
    if (this.live) this.write(`${this.prefix()} ${label} ...`)
  }

  update (p: LoadProgress): void {
    if (!this.live) return
    const rate = p.elapsedMs > 0 ? Math.round((p.ok * 1000) / p.elapsedMs) : 0
    this.write(`${this.prefix()} ${this.label}  ${(p.elapsedMs / 1000).toFixed(1)}/${(p.totalMs / 1000).toFixed(0)} s  ` +
      `sent ${p.sent}  ok ${p.ok}  failed ${p.failed}  ~${rate}/s`)
  }

  end (summary: string): void {
    if (!this.enabled) return
    const line = `${this.prefix()} ${this.label}: ${summary}`
    if (this.live) this.write(line)
    else this.stream.write(`${line}\n`)
    if (this.live) this.stream.write('\n')
  }

  info (message: string): void {
    if (!this.enabled) return
    if (this.live) this.stream.write('\r\x1b[2K')
    this.stream.write(`${message}\n`)
  }

  private prefix (): string {
    const t = Math.round((Date.now() - this.runStarted) / 1000)
    return `[${String(t).padStart(3)} s #${this.stepNumber}]`
  }

  private write (text: string): void {
    const columns = this.stream.columns ?? 160
    this.stream.write(`\r\x1b[2K${text.slice(0, columns - 1)}`)
  }
}
