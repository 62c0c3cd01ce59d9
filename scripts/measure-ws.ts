/**
 * A quick, bounded measurement of /ws on one connection (not the bench: `npm run bench` will
 * carry the WebSocket scenarios with hdr histograms and baselines). About 20 s in all:
 *
 *   npm run build && npx tsx scripts/measure-ws.ts [--workers 1] [--seconds 3] [--url http://...]
 *
 * Starts `node dist/src/cli/serve.js` on a free loopback port in its own process (unless --url),
 * then, from this process, over one `ws` connection with pre-encoded frames:
 *  1. single-request binary frames, closed loop, 256 in flight: frames/s and latency;
 *  2. the same through PredictionClient.predict (the library's own overhead included);
 *  3. single-request JSON text frames, closed loop, 256 in flight;
 *  4. batch frames of 64 requests, 16 frames in flight: predictions/s;
 *  0. first, open loop at 10,000 single frames/s (latency from the intended and the actual send
 *     time), and the server's own latency histogram for it.
 * Latencies are client-side round trips (send -> answer), percentiles over all answers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { PredictionClient } from '../src/client/index.js'
import { FbClientCodec, type PredictionRequest } from '../src/client/wire-codec.js'

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '3' },
    url: { type: 'string' },
  },
})
const seconds = Number(values.seconds)

async function startServer (): Promise<{ url: string, child: ChildProcess | null }> {
  if (values.url !== undefined) return { url: values.url, child: null }
  const child = spawn(process.execPath, ['dist/src/cli/serve.js'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', WORKERS: values.workers, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('server did not start within 20 s')) }, 20_000)
    let buf = ''
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(buf)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${String(code)}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, child }
}

function pct (sorted: Float64Array, p: number): string {
  if (sorted.length === 0) return '-'
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(3)
}

function report (name: string, count: number, unit: string, elapsedS: number, lat: number[]): void {
  const sorted = Float64Array.from(lat).sort()
  console.log(`${name.padEnd(44)} ${Math.round(count / elapsedS).toString().padStart(8)} ${unit}/s   rtt ms p50 ${pct(sorted, 0.5)} p99 ${pct(sorted, 0.99)} p99.9 ${pct(sorted, 0.999)} max ${pct(sorted, 1)}`)
}

const kSymbols = 200
function requestFor (i: number): PredictionRequest {
  return { price: 600 + (i % 97) * 0.1, volume: 1000 + (i % 13), bid_volume: 500, ask_volume: 400, symbol: `M${i % kSymbols}` }
}

async function openSocket (url: string, query = ''): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws${query}`, { perMessageDeflate: false })
  ws.binaryType = 'nodebuffer'
  await new Promise<void>((resolve, reject) => { ws.once('message', () => { resolve() }); ws.once('error', reject) })
  return ws
}

/** Closed loop: `window` frames in flight; each answer sends the next. Answers are counted, not decoded. */
async function closedLoop (url: string, name: string, window: number, perFrame: number, json: boolean, makeFrame: (id: number) => Uint8Array | string): Promise<void> {
  const ws = await openSocket(url, json ? '?format=json' : '')
  const sentAt = new Float64Array(65536)
  const lat: number[] = []
  let id = 0
  let measuring = false
  let answers = 0
  let stop = false
  // Ids cycle through a 64k ring; answers are matched by reading the id back cheaply below.
  const send = (): void => {
    const i = id++ & 0xFFFF
    sentAt[i] = performance.now()
    ws.send(makeFrame(i), { binary: !json })
  }
  const codecIdOf = (data: Buffer): number => {
    if (json) return Number(/"id":(\d+)/.exec(data.toString('latin1'))![1])
    // Prediction / BatchResult: the body table's first field is the id; read it via the vtable.
    const root = data.readUInt32LE(0)
    const bodyField = root - data.readInt32LE(root)
    const bodyOff = data.readUInt16LE(bodyField + 6)
    const body = root + bodyOff + data.readUInt32LE(root + bodyOff)
    const vt = body - data.readInt32LE(body)
    const idOff = data.readUInt16LE(vt + 4)
    return idOff === 0 ? 0 : data.readUInt32LE(body + idOff)
  }
  ws.on('message', (data: Buffer) => {
    if (measuring) {
      answers++
      lat.push(performance.now() - sentAt[codecIdOf(data)]!)
    }
    if (!stop) send()
  })
  for (let i = 0; i < window; i++) send()
  await new Promise(resolve => setTimeout(resolve, 1000)) // warm-up
  measuring = true
  const t0 = performance.now()
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  measuring = false
  const elapsed = (performance.now() - t0) / 1000
  stop = true
  report(name, answers * perFrame, perFrame > 1 ? 'predictions' : 'frames', elapsed, lat)
  ws.terminate()
}

async function clientLoop (url: string, window: number): Promise<void> {
  const client = new PredictionClient({ url, logger: null, timeoutMs: 5000 })
  await client.waitForConnection()
  const lat: number[] = []
  let measuring = false
  let answers = 0
  let stop = false
  let n = 0
  const one = async (): Promise<void> => {
    while (!stop) {
      const t = performance.now()
      await client.predict(requestFor(n++))
      if (measuring) { answers++; lat.push(performance.now() - t) }
    }
  }
  const loops = Array.from({ length: window }, one)
  await new Promise(resolve => setTimeout(resolve, 1000))
  measuring = true
  const t0 = performance.now()
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  measuring = false
  const elapsed = (performance.now() - t0) / 1000
  stop = true
  await Promise.all(loops)
  report(`PredictionClient.predict, ${window} in flight`, answers, 'calls', elapsed, lat)
  await client.close()
}

/**
 * Open loop at `rate` frames/s, sent in bursts from a 1 ms timer (not a spin loop, which would
 * take a whole core of this 2-core machine from the server). Latency is reported twice: from the
 * intended send time (the schedule; charges generator lateness, up to ~1 ms from the timer, to the
 * result) and from the actual send time.
 */
async function openLoop (url: string, rate: number, durationS: number, report_: boolean): Promise<void> {
  const ws = await openSocket(url)
  const total = Math.floor(rate * durationS)
  const intended = new Float64Array(total)
  const actual = new Float64Array(total)
  const fromIntended: number[] = []
  const fromActual: number[] = []
  let answered = 0
  ws.on('message', (data: Buffer) => {
    const root = data.readUInt32LE(0)
    const bodyField = root - data.readInt32LE(root)
    const bodyOff = data.readUInt16LE(bodyField + 6)
    const body = root + bodyOff + data.readUInt32LE(root + bodyOff)
    const vt = body - data.readInt32LE(body)
    const idOff = data.readUInt16LE(vt + 4)
    const id = idOff === 0 ? 0 : data.readUInt32LE(body + idOff)
    const now = performance.now()
    fromIntended.push(now - intended[id]!)
    fromActual.push(now - actual[id]!)
    answered++
  })
  const codec = new FbClientCodec()
  const start = performance.now() + 2
  let next = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      while (next < total && start + next * 1000 / rate <= now) {
        intended[next] = start + next * 1000 / rate
        actual[next] = performance.now()
        ws.send(codec.request(next, requestFor(next)), { binary: true })
        next++
      }
      if (next < total) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  const deadline = performance.now() + 5000
  while (answered < total && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
  if (report_) {
    report(`open loop ${rate}/s, from intended send (${answered}/${total})`, answered, 'frames', durationS, fromIntended)
    report(`open loop ${rate}/s, from actual send`, answered, 'frames', durationS, fromActual)
  }
  ws.terminate()
}

async function serverLatency (url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  const m = await res.json() as { latency_ms: { p50: number, p99: number, p999: number, max: number, count: number } }
  const l = m.latency_ms
  return `server-side latency (frame read -> answer written), all ${l.count} requests so far: p50 ${l.p50} p99 ${l.p99} p99.9 ${l.p999} max ${l.max} ms`
}

const { url, child } = await startServer()
try {
  console.log(`machine: ${cpus().length} cpus, ${cpus()[0]?.model ?? '?'}; node ${process.version}; server workers ${values.workers}; ${seconds} s per scenario after 1 s warm-up`)
  // First, on the fresh server, so that its own latency histogram holds only this scenario.
  await openLoop(url, 10_000, Number(process.env.WARM ?? 1), false)
  await openLoop(url, 10_000, seconds, true)
  console.log(await serverLatency(url))
  const codec = new FbClientCodec()
  // Frames built on demand (ids differ); encoding cost is part of the generator's load.
  await closedLoop(url, 'binary single frames, 256 in flight', 256, 1, false, (id) => codec.request(id, requestFor(id)))
  await clientLoop(url, 256)
  await closedLoop(url, 'JSON single frames, 256 in flight', 256, 1, true, (id) => JSON.stringify({ ...requestFor(id), id }))
  const batch = Array.from({ length: 64 }, (_v, i) => requestFor(i))
  await closedLoop(url, 'binary batch frames x64, 16 in flight', 16, 64, false, (id) => codec.batch(id, batch))
} finally {
  child?.kill('SIGTERM')
}
