/**
 * Load shedding and deadlines on the real server (CONTRACT.md, "Errors": 503 "Overloaded" with
 * Retry-After over the queue limit, 504 past the deadline). Bursts far beyond a tiny queue must
 * get complete answers, shed or served, never a hang; afterwards the server serves again.
 *
 * Serial: timing-sensitive (STYLE B8). No assertion is about speed: each burst is sized so that a
 * queue must form whatever the machine, and the deadline check retries a bounded number of bursts.
 */
import t, { type Test } from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

interface Answer { status: number, retryAfter: string | null, body: any }

async function burst (url: string, n: number, tag: string, extra: Record<string, unknown> = {}): Promise<Answer[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    // A rejection here (timeout, reset) fails the test: every request must be answered.
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ symbol: `${tag}${i}`, price: 100 + i / 10, volume: i, ...extra }),
      signal: AbortSignal.timeout(30_000),
    })
    const text = await res.text()
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: JSON.parse(text) }
  }))
}

function tally (answers: readonly Answer[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const a of answers) out[a.status] = (out[a.status] ?? 0) + 1
  return out
}

async function errorCount (url: string, code: string): Promise<number> {
  return (await getJson(`${url}/metrics`)).body.errors_by_code[code] ?? 0
}

async function assertServes (t: Test, url: string): Promise<void> {
  const res = await postJson(`${url}/predict`, { price: 612.5, symbol: 'AFTERUSDT' })
  t.equal(res.status, 200, 'a single request afterwards is served: the queue recovered')
  t.type(res.body?.probability_long, 'number')
}

t.test('over max_queue_size: 503 Overloaded with Retry-After, the rest 200', async (t) => {
  // The longest deadline: on a loaded machine a queued request could otherwise outwait the
  // default second and answer 504, which is not what this test is about.
  const { url, server } = await startServer(t, { max_queue_size: 4, max_batch_size: 2, workers: 1, deadline_ms: 60_000 })
  const before = await errorCount(url, 'ERR_OVERLOADED')
  const answers = await burst(url, 500, 'SHED')
  const counts = tally(answers)
  t.comment(`statuses: ${JSON.stringify(counts)}`)

  t.same(Object.keys(counts).sort(), ['200', '503'], 'only 200 and 503 answers')
  t.ok((counts[503] ?? 0) > 0, 'some requests were shed')
  t.ok((counts[200] ?? 0) > 0, 'some requests were served')
  for (const [i, a] of answers.entries()) {
    if (a.status === 503) {
      if (a.body?.detail !== 'Overloaded' || a.retryAfter !== '1') t.fail(`request ${i}: 503 ${JSON.stringify(a.body)} Retry-After ${a.retryAfter}`)
    } else if (a.body?.symbol !== `SHED${i}` || typeof a.body?.probability_long !== 'number') {
      t.fail(`request ${i}: ${a.status} ${JSON.stringify(a.body)}`)
    }
  }
  t.equal(await errorCount(url, 'ERR_OVERLOADED') - before, counts[503], 'errors_by_code.ERR_OVERLOADED counts every 503')
  t.equal(server.service.pending, 0, 'nothing is left queued or in flight')
  await assertServes(t, url)

  // Shed requests changed no state: a shed symbol is unknown to the feature store.
  const shed = answers.findIndex((a) => a.status === 503)
  t.notOk(server.service.features.has(`SHED${shed}`), 'a shed request created no symbol state')
})

t.test('a batch over the queue limit: each item answered, shed items OVERLOADED', async (t) => {
  const { url } = await startServer(t, { max_queue_size: 4, max_batch_size: 2, workers: 1, deadline_ms: 60_000 })
  const requests = Array.from({ length: 50 }, (_, i) => ({ symbol: `BSHED${i}`, price: 100 + i }))
  const res = await postJson(`${url}/predict/batch`, { requests })
  t.equal(res.status, 200)
  const items: any[] = res.body.predictions
  t.equal(items.length, requests.length)
  const shed = items.filter((p) => p.error === 'OVERLOADED')
  t.ok(shed.length > 0, `some items shed (${shed.length})`)
  t.ok(shed.every((p) => p.status_code === 503 && p.detail === 'Overloaded'), 'shed items say OVERLOADED, 503')
  t.ok(items.every((p, i) => p.error === 'OVERLOADED' || p.symbol === `BSHED${i}`), 'the rest are their own predictions')
  await assertServes(t, url)
})

t.test('past deadline_ms: 504 Deadline exceeded', async (t) => {
  // One worker taking one row at a time, and a 1 ms deadline: any queue longer than a row or two
  // outlives it. Bursts are repeated (at most 10) until one shows a 504, so a fast machine that
  // happens to drain a burst in time does not fail the test.
  const { url, server } = await startServer(t, { deadline_ms: 1, max_batch_size: 1, workers: 1 })
  const seen: Record<number, number> = {}
  for (let round = 0; round < 10 && (seen[504] ?? 0) === 0; round++) {
    const answers = await burst(url, 300, `DL${round}_`)
    for (const [i, a] of answers.entries()) {
      seen[a.status] = (seen[a.status] ?? 0) + 1
      if (a.status === 504 && a.body?.detail !== 'Deadline exceeded') t.fail(`request ${i}: 504 ${JSON.stringify(a.body)}`)
      if (a.status !== 504 && a.status !== 200) t.fail(`request ${i}: unexpected ${a.status} ${JSON.stringify(a.body)}`)
    }
  }
  t.comment(`statuses: ${JSON.stringify(seen)}`)
  t.ok((seen[504] ?? 0) > 0, 'some requests answered 504')
  t.equal(await errorCount(url, 'ERR_DEADLINE_EXCEEDED'), seen[504], 'errors_by_code.ERR_DEADLINE_EXCEEDED counts every 504')
  t.equal(server.service.pending, 0, 'nothing is left queued or in flight')
  await assertServes(t, url)
})

t.test('a client deadline_ms shortens the server\'s: batch items past it are DEADLINE_EXCEEDED', async (t) => {
  // Items of one batch are admitted in one synchronous loop; with one worker taking one row at a
  // time, the last of 300 rows cannot be dispatched within 1 ms of its admission.
  const { url } = await startServer(t, { max_batch_size: 1, workers: 1 })
  const requests = Array.from({ length: 300 }, (_, i) => ({ symbol: `CDL${i}`, price: 100 + i, deadline_ms: 1 }))
  const res = await postJson(`${url}/predict/batch`, { requests })
  t.equal(res.status, 200)
  const items: any[] = res.body.predictions
  const late = items.filter((p) => p.error === 'DEADLINE_EXCEEDED')
  t.ok(late.length > 0, `some items exceeded their deadline (${late.length} of ${items.length})`)
  t.ok(late.every((p) => p.status_code === 504 && p.detail === 'Deadline exceeded'), 'as 504 DEADLINE_EXCEEDED items')
  t.ok(items.every((p, i) => p.error === 'DEADLINE_EXCEEDED' || p.symbol === `CDL${i}`), 'the rest are their own predictions')
  await assertServes(t, url)
})
