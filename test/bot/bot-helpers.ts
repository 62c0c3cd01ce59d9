/**
 * What the bot tests share: the bot's decoding rules written as exact typeof checks (its serde
 * structs have f64/String/bool fields, so null, a missing field or a string number fails there and
 * must fail here), a keep-alive HTTP client (the bot keeps its connection; a drain treats open
 * connections differently from new ones), and the admin call for reloads.
 */
import { Agent, request as httpRequest } from 'node:http'
import type { Test } from 'tap'

export const kAdminToken = 'bot-test-token-0123456789'

type Kind = 'number' | 'string' | 'boolean'

/** Fields of the bot's Health struct (examples/rust-bot/src/lib.rs). */
const kHealthFields: ReadonlyArray<readonly [string, Kind]> = [
  ['status', 'string'], ['model_loaded', 'boolean'], ['model_version', 'string'],
  ['uptime_seconds', 'number'], ['avg_latency_ms', 'number'],
]

/** Fields of the bot's Prediction struct. */
const kPredictionFields: ReadonlyArray<readonly [string, Kind]> = [
  ['direction', 'string'], ['confidence', 'number'], ['probability_long', 'number'],
  ['model_version', 'string'], ['symbol', 'string'], ['latency_ms', 'number'],
]

function problems (body: unknown, fields: ReadonlyArray<readonly [string, Kind]>): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [`not a JSON object: ${JSON.stringify(body)}`]
  const out: string[] = []
  for (const [name, kind] of fields) {
    const value = (body as Record<string, unknown>)[name]
    if (typeof value !== kind) out.push(`${name}: ${kind} expected, got ${JSON.stringify(value) ?? 'nothing'}`)
  }
  return out
}

/** What would stop serde from decoding `body` as the bot's Health: [] when it decodes. */
export function healthProblems (body: unknown): string[] { return problems(body, kHealthFields) }

/** Same for Prediction, plus the contract's ranges the bot relies on (direction, confidence). */
export function predictionProblems (body: unknown): string[] {
  const out = problems(body, kPredictionFields)
  if (out.length > 0) return out
  const p = body as { direction: string, confidence: number, probability_long: number }
  if (p.direction !== 'LONG' && p.direction !== 'SHORT') out.push(`direction ${p.direction}`)
  if (!(p.confidence >= 0.5 && p.confidence <= 1)) out.push(`confidence ${p.confidence}`)
  if (Math.abs(p.confidence - Math.max(p.probability_long, 1 - p.probability_long)) > 1e-5) out.push('confidence != max(p, 1 - p)')
  if ((p.direction === 'LONG') !== (p.probability_long >= 0.5)) out.push('direction disagrees with probability_long')
  return out
}

/**
 * The bot's ErrorBody: `detail` is a string, or (422) a list of {loc: array, msg: string,
 * type: string}.
 */
export function detailProblems (body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [`not a JSON object: ${JSON.stringify(body)}`]
  const detail = (body as { detail?: unknown }).detail
  if (typeof detail === 'string') return detail.length > 0 ? [] : ['empty detail']
  if (!Array.isArray(detail) || detail.length === 0) return [`detail: string or non-empty list expected, got ${JSON.stringify(detail) ?? 'nothing'}`]
  return detail.flatMap((issue: unknown, i: number) => {
    const x = issue as { loc?: unknown, msg?: unknown, type?: unknown } | null
    if (x === null || typeof x !== 'object' || !Array.isArray(x.loc) || typeof x.msg !== 'string' || typeof x.type !== 'string') {
      return [`detail[${i}]: {loc: [], msg: string, type: string} expected, got ${JSON.stringify(issue)}`]
    }
    return []
  })
}

export interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: any }

/**
 * One keep-alive connection (maxSockets 1), like the bot's pooled client: requests reuse it while
 * the server keeps it open. Destroyed at teardown.
 */
export function keepAliveAgent (t: Test): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { agent.destroy() })
  return agent
}

/** A JSON request over `agent`; rejects on a transport error or after 10 s. */
export function send (agent: Agent, url: string, method: 'GET' | 'POST', body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    const req = httpRequest(url, {
      agent,
      method,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      timeout: 10_000,
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown = text
        try { parsed = JSON.parse(text) } catch { /* the caller sees the text */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`${method} ${url}: no answer in 10 s`)) })
    req.on('error', reject)
    req.end(payload)
  })
}

/** POST /admin/<path> with the test token. */
export async function admin (url: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${url}/admin/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${kAdminToken}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  return { status: res.status, headers: {}, body: text.length > 0 ? JSON.parse(text) : null }
}

/** Resolves once `condition` holds (checked every 10 ms) or after `maxMs`; returns whether it held. */
export async function until (condition: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs
  while (!condition() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  return condition()
}
