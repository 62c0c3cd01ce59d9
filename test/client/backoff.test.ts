/**
 * The reconnection delay: exponential from initialDelayMs, capped at maxDelayMs, with "equal
 * jitter" (between half and all of the exponential value).
 */
import t from 'tap'
import { backoffDelayMs } from '../../src/client/index.js'

const options = { initialDelayMs: 50, maxDelayMs: 5000, maxAttempts: Infinity }

t.test('exponential, capped, never zero', async (t) => {
  const low = (attempt: number) => backoffDelayMs(attempt, options, () => 0)
  const high = (attempt: number) => backoffDelayMs(attempt, options, () => 1)
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 8].map(high), [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000])
  t.same([0, 1, 2, 7, 40].map(low), [25, 50, 100, 2500, 2500], 'at least half of the capped value')
  t.equal(high(10_000), 5000, 'a huge attempt count does not overflow')
})

t.test('jitter spreads clients that retry together', async (t) => {
  const delays = new Set<number>()
  for (let i = 0; i < 200; i++) {
    const d = backoffDelayMs(3, options)
    t.ok(d >= 200 && d <= 400, `${d} within [200, 400]`)
    delays.add(d)
  }
  t.ok(delays.size > 50, `many distinct delays (${delays.size})`)
})
