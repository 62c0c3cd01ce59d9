/**
 * Starts the real server in-process on 127.0.0.1, port 0, with the shipped model, and registers
 * its graceful close as the test's teardown. Requests then go over real HTTP with fetch.
 */
import type { Test } from 'tap'
import { configFromSettings } from '../../src/config/load.js'
import type { RawSettings } from '../../src/config/schema.js'
import { createLogger } from '../../src/log/logger.js'
import { PredictionServer } from '../../src/server/app.js'

export interface StartedServer {
  readonly server: PredictionServer
  readonly url: string
  readonly port: number
}

export async function startServer (t: Test, settings: Partial<RawSettings> = {}): Promise<StartedServer> {
  const config = configFromSettings({
    host: '127.0.0.1',
    port: 0,
    workers: 2,
    warmup_runs: 2,
    log_level: 'silent',
    // The shipped 1 s default deadline turns a queue wait on a loaded CI machine (bursts of a few
    // hundred rows behind two workers) into 504s in tests that are not about deadlines. Tests of
    // deadlines set deadline_ms (or a request's deadline_ms) themselves.
    deadline_ms: 60_000,
    ...settings,
  })
  const server = await PredictionServer.start(config, createLogger(config.logLevel, null))
  t.teardown(() => server.close())
  return { server, url: `http://127.0.0.1:${server.port}`, port: server.port }
}

/** POSTs a JSON value (or a raw string body) and returns status, headers and parsed body. */
export async function postJson (url: string, body: unknown, raw = false): Promise<{ status: number, headers: Headers, body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch { /* not JSON: the test sees the text */ }
  return { status: res.status, headers: res.headers, body: parsed }
}

export async function getJson (url: string): Promise<{ status: number, headers: Headers, body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch { /* not JSON: the test sees the text */ }
  return { status: res.status, headers: res.headers, body: parsed }
}
