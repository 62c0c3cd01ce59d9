/**
 * The baseline of issue 3: a bare uWebSockets.js handler that reads the POST body, parses it as
 * JSON and answers a constant prediction. No validation, no features, no batcher, no worker hop:
 * what the transport alone costs, so that "p50 at most 100 µs above a bare handler" has its
 * reference in the same run. It runs as its own process, like the server, and speaks the same
 * start-up protocol to the bench: a JSON log line with event "listening" and the bound port, and
 * 200 on /health/ready.
 *
 *   node --import tsx bench/baseline/bare-uws-server.ts --host 127.0.0.1 --port 0
 */

import { parseArgs } from 'node:util'
import * as uws from 'uWebSockets.js'

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } },
})

// The same shape and size class as a real answer, so the response path costs the same.
const kAnswer = '{"direction":"LONG","confidence":0.518615,"probability_long":0.518615,' +
  '"model_version":"bare-baseline","symbol":"BNBUSDT","latency_ms":0.001}'
const kMaxBody = 1 << 20

const app = uws.App()
app.post('/predict', (res) => {
  let aborted = false
  let body: Buffer | null = null
  res.onAborted(() => { aborted = true })
  res.onData((chunk, isLast) => {
    // uWS reuses the chunk's memory after this callback: copy before keeping it.
    const part = Buffer.from(new Uint8Array(chunk))
    body = body === null ? part : Buffer.concat([body, part])
    if (body.length > kMaxBody) {
      if (!aborted) res.cork(() => { res.writeStatus('413 Payload Too Large').end('{"detail":"too large"}', true) })
      aborted = true
      return
    }
    if (!isLast || aborted) return
    let status = '200 OK'
    let answer = kAnswer
    try {
      JSON.parse(body.toString('utf8'))
    } catch {
      status = '400 Bad Request'
      answer = '{"detail":"Invalid JSON body"}'
    }
    res.cork(() => {
      res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(answer)
    })
  })
})
app.get('/health/ready', (res) => { res.writeHeader('Content-Type', 'application/json').end('{"status":"ready"}') })
app.any('/*', (res) => { res.writeStatus('404 Not Found').end('{"detail":"Not Found"}') })

app.listen(values.host!, Number(values.port), (token) => {
  if (token === false) {
    process.stderr.write(`could not listen on ${values.host}:${values.port}\n`)
    process.exit(1)
  }
  const port = uws.us_socket_local_port(token)
  process.stdout.write(`${JSON.stringify({ event: 'listening', host: values.host, port, server: 'bare-uws' })}\n`)
  const stop = (): void => {
    uws.us_listen_socket_close(token)
    app.close()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
})
