/**
 * The client against a real server process that freezes (SIGSTOP: a GC pause, a stuck host) and
 * then dies (SIGKILL): calls time out into the bot's fallback with its log line, calls in flight
 * fail at once when the connection drops instead of waiting for their timeouts, and the client
 * comes back when a new server process starts on the same port.
 */
import t from 'tap'
import { PredictionClient } from '../../src/client/index.js'
import { RecordingLogger, startChildServer, waitFor } from './client-helpers.js'

t.test('frozen, killed, restarted: timeout fallback, fail-fast on disconnect, reconnection', async (t) => {
  const first = await startChildServer(t)
  const logger = new RecordingLogger()
  const client = new PredictionClient({ url: first.url, logger, reconnect: { initialDelayMs: 20, maxDelayMs: 250 } })
  t.teardown(() => client.close())
  await client.waitForConnection(10_000)
  t.ok(await client.predictWithFallback({ price: 612.5, symbol: 'BNBUSDT' }), 'served before the freeze')

  first.child.kill('SIGSTOP')
  t.teardown(() => { first.child.kill('SIGCONT') })
  const started = performance.now()
  const prediction = await client.predictWithFallback({ price: 612.5, symbol: 'BNBUSDT' })
  const elapsed = performance.now() - started
  t.equal(prediction, null, 'a frozen server: fallback mode (null)')
  // Not >= 100: libuv arms a timer from the loop's cached clock, so it can fire early by however
  // long this tick has run (more than a millisecond when a loaded machine preempts the process).
  t.ok(elapsed >= 90 && elapsed < 1000, `after the 100 ms timeout (${elapsed.toFixed(1)} ms)`)
  t.equal(logger.lines.at(-1)?.message, 'ML prediction failed (fallback mode): timeout after 100ms', 'the bot\'s line, word for word')
  t.equal(logger.lines.at(-1)?.level, 'warn')
  await t.rejects(client.predict({ price: 1 }, { timeoutMs: 50 }), { code: 'ERR_CLIENT_TIMEOUT', timeoutMs: 50, message: 'timeout after 50ms' })

  // Calls with a long timeout are in flight on the socket; the process then dies.
  const inFlight = Array.from({ length: 20 }, (_v, i) => client.predict({ price: 1 + i }, { timeoutMs: 30_000 }).then(
    () => ({ code: 'answered', at: performance.now() }),
    (err: { code: string }) => ({ code: err.code, at: performance.now() }),
  ))
  await waitFor(() => client.inFlight === 20, 15_000, 'the calls to be sent')
  const killedAt = performance.now()
  await first.kill()
  const outcomes = await Promise.all(inFlight)
  t.ok(outcomes.every(o => o.code === 'ERR_CLIENT_DISCONNECTED'), 'every call in flight failed with ERR_CLIENT_DISCONNECTED')
  const slowest = Math.max(...outcomes.map(o => o.at - killedAt))
  // The bound includes the kernel tearing the process down; a loaded machine may take a few
  // seconds. Still far below the calls' 30 s timeout, which is what a missed disconnect waits for.
  t.ok(slowest < 10_000, `at once, not after the 30 s timeout (${slowest.toFixed(0)} ms)`)
  t.equal(client.inFlight, 0)

  // A new process on the same port (the port is free once the old process is gone).
  const second = await startChildServer(t, first.port)
  t.equal(second.port, first.port)
  await client.waitForConnection(15_000)
  t.equal(client.reconnects, 1)
  const after = await client.predict({ price: 612.5, symbol: 'AFTER_RESTART' }, { timeoutMs: 5000 })
  t.equal(after.symbol, 'AFTER_RESTART', 'served by the new process over a new socket')
})
