/**
 * A tiny node:http server on 127.0.0.1:0 for the bench's own tests: it answers by a script keyed
 * on the request number, so a test can make request #n slow, failing, silent or a stall of the
 * whole process (Atomics.wait blocks this thread: a GC-pause-like stop of the server).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export type StubAction = 'ok' | 'status503' | 'destroy' | 'silent' | { readonly stallMs: number }

export interface StubServer {
  readonly port: number
  /** Requests seen so far. */
  readonly count: () => number
}

const kSleepCell = new Int32Array(new SharedArrayBuffer(4))

export async function startStub (t: Test, script: (n: number) => StubAction): Promise<StubServer> {
  let n = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const action = script(++n)
      if (action === 'silent') return
      if (action === 'destroy') { req.socket.destroy(); return }
      if (typeof action === 'object') Atomics.wait(kSleepCell, 0, 0, action.stallMs)
      const status = action === 'status503' ? 503 : 200
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(status === 200 ? '{"direction":"LONG","confidence":0.5}' : '{"detail":"Overloaded"}')
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => { resolve() })
  }))
  return { port: (server.address() as AddressInfo).port, count: () => n }
}
