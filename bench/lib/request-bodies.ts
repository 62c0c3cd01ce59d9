/**
 * What the generator sends. One fixed snapshot, the README's example tick: the server's cost per
 * request does not depend on the values (the feature update is O(1) whatever they are), and a
 * fixed body lets `wrk` send byte-for-byte the same request for the cross-check
 * (bench/wrk/post.lua holds the same string; test/bench/wrk-script.test.ts keeps them equal).
 */

import { FbClientCodec, batchText, requestText, type PredictionRequest } from '../../src/client/wire-codec.js'
import type { RequestTemplate, Transport } from './load-types.js'

export const kPredictBody = '{"price": 612.5, "volume": 1520.3, "bid_volume": 812.0, "ask_volume": 640.5, "symbol": "BNBUSDT"}'

export type HttpRoute = '/predict' | '/predict/batch'

/** The JSON body for `rows` snapshots: a single request for /predict, a list for /predict/batch. */
export function bodyFor (route: HttpRoute, rows: number): string {
  if (route === '/predict') return kPredictBody
  return `{"requests":[${new Array<string>(rows).fill(kPredictBody).join(',')}]}`
}

/**
 * The whole request, built once: request line, the headers wrk sends (Host, Content-Type,
 * Content-Length; keep-alive is HTTP/1.1's default), body.
 */
export function httpRequestBytes (host: string, port: number, path: string, body: string): Buffer {
  const bodyBytes = Buffer.from(body, 'utf8')
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${bodyBytes.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), bodyBytes])
}

/**
 * The generator's request template for a load: the whole HTTP request, or a WebSocket frame
 * encoded by the project's own client codec (src/client/wire-codec.ts), so the bench sends what
 * the bot's client sends. `body` is a /predict body (one request) or a /predict/batch body.
 */
export function requestTemplate (transport: Transport, host: string, port: number, path: string, body: string): RequestTemplate {
  if (transport === 'http') return { kind: 'http', bytes: new Uint8Array(httpRequestBytes(host, port, path, body)) }
  const parsed = JSON.parse(body) as PredictionRequest | { requests: PredictionRequest[] }
  const batch = 'requests' in parsed ? parsed.requests : null
  if (transport === 'ws-binary') {
    const codec = new FbClientCodec()
    // Encode with two sentinel ids; the four bytes that differ are where each request's id goes.
    const encode = (id: number): Uint8Array => (batch === null ? codec.request(id, parsed as PredictionRequest) : codec.batch(id, batch)).slice()
    const a = encode(kSentinelA)
    const b = encode(kSentinelB)
    const differ: number[] = []
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ.push(i)
    const idAt = differ[0] ?? -1
    if (a.length !== b.length || differ.length === 0 || differ.length > 4 || differ[differ.length - 1]! - idAt > 3 ||
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).readUInt32LE(idAt) !== kSentinelA) {
      throw new Error('could not locate the id in the FlatBuffers request template')
    }
    return { kind: 'ws', ws: { path: '/ws', binary: true, payload: a, idAt, textPrefix: '', textSuffix: '' } }
  }
  const text = batch === null ? requestText(kSentinelA, parsed as PredictionRequest) : batchText(kSentinelA, batch)
  const parts = text.split(`"id":${kSentinelA}`)
  if (parts.length !== 2) throw new Error('could not locate the id in the JSON request template')
  return {
    kind: 'ws',
    ws: { path: '/ws?format=json', binary: false, payload: new Uint8Array(0), idAt: 0, textPrefix: `${parts[0]}"id":`, textSuffix: parts[1]! },
  }
}

const kSentinelA = 0x5A5B5C5D
const kSentinelB = 0xA1B2C3D4
