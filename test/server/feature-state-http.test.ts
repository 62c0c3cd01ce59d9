/**
 * Per-symbol feature state, seen from outside (CONTRACT.md, "Stateful features"): invalid requests
 * change nothing, repeats inside a bar add no history, the least recently used symbol is dropped
 * first, and concurrent answers belong to their own requests. Every check compares two real
 * servers fed different request streams that must come to the same state; none hard-codes a
 * probability.
 */
import t, { type Test } from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { prng as rng } from '../helpers/prng.js'

const kBarMs = 60_000
/** Bar 0 of every sequence: three hours back, so 100+ one-minute bars stay in the past. */
const kBar0 = Math.floor((Date.now() - 3 * 3_600_000) / kBarMs) * kBarMs
const barTs = (bar: number, offsetMs = 5_000): number => kBar0 + bar * kBarMs + offsetMs


interface Candle { open: number, high: number, low: number, close: number, volume: number, btc: number }

/** A random walk of one-minute candles (and BTC alongside), so the rolling features move. */
function candles (n: number, rand: () => number, start = 600): Candle[] {
  const out: Candle[] = []
  let price = start
  let btc = 62_000
  for (let i = 0; i < n; i++) {
    const open = price
    const close = open * Math.exp((rand() - 0.48) * 0.01)
    btc *= Math.exp((rand() - 0.5) * 0.004)
    out.push({
      open,
      close,
      high: Math.max(open, close) * (1 + rand() * 0.003),
      low: Math.min(open, close) * (1 - rand() * 0.003),
      volume: 100 + rand() * 2000,
      btc,
    })
    price = close
  }
  return out
}

/** The request carrying a bar's final candle (and a book snapshot), as a bot sends at bar close. */
function candleRequest (symbol: string, bar: number, c: Candle, rand: () => number): Record<string, unknown> {
  const spread = c.close * (0.0001 + rand() * 0.001)
  return {
    symbol,
    price: c.close,
    open: c.open,
    high: c.high,
    low: c.low,
    volume: c.volume,
    bid_volume: 100 + rand() * 500,
    ask_volume: 100 + rand() * 500,
    best_bid: c.close - spread / 2,
    best_ask: c.close + spread / 2,
    bid_depth_5: 50 + rand() * 200,
    ask_depth_5: 50 + rand() * 200,
    btc_price: c.btc,
    funding_rate: 0.0001,
    timestamp_ms: barTs(bar, 50_000),
  }
}

async function predict (t: Test, url: string, body: unknown, raw = false): Promise<number> {
  const res = await postJson(`${url}/predict`, body, raw)
  if (res.status !== 200) {
    t.fail(`expected 200, got ${res.status} ${JSON.stringify(res.body)} for ${raw ? String(body) : JSON.stringify(body)}`)
    return Number.NaN
  }
  return res.body.probability_long
}

async function expectRejected (t: Test, url: string, body: unknown, status: number, loc?: ReadonlyArray<string | number>, raw = false): Promise<void> {
  const res = await postJson(`${url}/predict`, body, raw)
  t.equal(res.status, status, `rejected with ${status}: ${raw ? String(body) : JSON.stringify(body)}`)
  if (loc !== undefined) {
    t.ok((res.body?.detail ?? []).some((d: any) => JSON.stringify(d.loc) === JSON.stringify(loc)), `an issue at ${JSON.stringify(loc)}: ${JSON.stringify(res.body)}`)
  }
}

// Two servers for the whole file, each sequence on its own symbols: `subject` gets the stream
// under test, `reference` the stream it must be equivalent to. Symbols never mix across tests.
const subject = await startServer(t)
const reference = await startServer(t)

t.test('invalid requests change no state', async (t) => {
  const dirty = subject
  const clean = reference
  const rand = rng(11)
  const S = 'STATEUSDT'
  const bars = 30
  const series = candles(bars, rand)
  const dirtyAnswers: number[] = []
  const cleanAnswers: number[] = []

  for (let bar = 0; bar < bars; bar++) {
    const c = series[bar]!
    const good = candleRequest(S, bar, c, rand)
    const mid = { symbol: S, price: (c.high + c.low) / 2, timestamp_ms: barTs(bar, 20_000) }
    const next = barTs(bar + 1, 1_000)
    // Each one would change the state if any part of it were applied: most sit in the next bar,
    // which a partial update would open early.
    const invalid: Array<{ body: unknown, raw?: boolean, status: number, loc?: ReadonlyArray<string | number> }> = [
      { body: { symbol: S, price: -c.close, timestamp_ms: next }, status: 422, loc: ['body', 'price'] },
      { body: { symbol: S, price: String(c.close), volume: 1, timestamp_ms: next }, status: 422, loc: ['body', 'price'] },
      { body: `{"symbol":"${S}","price":1e999,"timestamp_ms":${next}}`, raw: true, status: 422, loc: ['body', 'price'] },
      { body: { symbol: S, price: c.close * 2, volume: -1, timestamp_ms: next }, status: 422, loc: ['body', 'volume'] },
      { body: { symbol: S, price: c.close * 2, high: c.close * 3, best_bid: 0, timestamp_ms: next }, status: 422, loc: ['body', 'best_bid'] },
      { body: { symbol: S, price: c.close * 2, btc_price: 'NaN', timestamp_ms: next }, status: 422, loc: ['body', 'btc_price'] },
      { body: { symbol: S, price: c.close * 2, timestamp_ms: next + 0.5 }, status: 422, loc: ['body', 'timestamp_ms'] },
      { body: { symbol: S, price: c.close * 2, deadline_ms: 0, timestamp_ms: next }, status: 422, loc: ['body', 'deadline_ms'] },
      { body: { symbol: S, price: c.close * 2, timestamp_ms: Date.now() + 86_400_000 }, status: 422, loc: ['body', 'timestamp_ms'] },
      { body: `{"symbol":"${S}","price":${c.close * 2},"timestamp_ms":${next}`, raw: true, status: 400 },
    ]
    // A request in an older bar than the symbol's current one is stale: 422, and nothing applied.
    if (bar >= 1) invalid.push({ body: { symbol: S, price: c.close * 2, volume: 1e9, timestamp_ms: barTs(bar - 1) }, status: 422, loc: ['body', 'timestamp_ms'] })
    const picks = invalid.filter((_, i) => (i + bar) % 3 === 0 || i === 10)
    // Interleaved: some before the bar's requests, some between them, some after.
    const third = Math.ceil(picks.length / 3)
    const reject = async (from: number, to: number): Promise<void> => {
      for (const bad of picks.slice(from, to)) await expectRejected(t, dirty.url, bad.body, bad.status, bad.loc, bad.raw === true)
    }
    await reject(0, third)
    dirtyAnswers.push(await predict(t, dirty.url, mid))
    await reject(third, 2 * third)
    dirtyAnswers.push(await predict(t, dirty.url, good))
    await reject(2 * third, picks.length)
    // Invalid items of a batch must not touch the state either.
    const batch = await postJson(`${dirty.url}/predict/batch`, { requests: [{ symbol: S, price: 0, timestamp_ms: next }, { symbol: S, price: 'x', timestamp_ms: next }] })
    t.equal(batch.status, 200)
    t.same(batch.body.predictions.map((p: any) => p.status_code), [422, 422])

    cleanAnswers.push(await predict(t, clean.url, mid))
    cleanAnswers.push(await predict(t, clean.url, good))
  }

  t.same(dirtyAnswers, cleanAnswers, 'the server that saw the invalid requests answers exactly as the one that did not')
  t.ok(new Set(cleanAnswers).size > 3, `the history moves the answer (${new Set(cleanAnswers).size} distinct)`)
  t.equal(await predict(t, dirty.url, { symbol: 'OTHERUSDT', price: 1 }), await predict(t, clean.url, { symbol: 'OTHERUSDT', price: 1 }), 'the server still serves')
})

t.test('repeated requests inside a bar add no history', async (t) => {
  const polled = subject
  const once = reference
  const rand = rng(12)
  const S = 'POLLUSDT'
  const bars = 30
  const series = candles(bars, rand)
  let compared = 0
  const seen = new Set<number>()

  for (let bar = 0; bar < bars; bar++) {
    const c = series[bar]!
    // Four polls inside the bar at prices within its final range, then the final candle.
    for (let k = 0; k < 4; k++) {
      const price = c.low + (c.high - c.low) * rand()
      await predict(t, polled.url, { symbol: S, price, bid_volume: rand() * 100, ask_volume: rand() * 100, timestamp_ms: barTs(bar, 1_000 + k * 10_000) })
    }
    const final = candleRequest(S, bar, c, rand)
    const a = await predict(t, polled.url, final)
    const b = await predict(t, once.url, final)
    if (a !== b) t.fail(`bar ${bar}: polled ${a} != once ${b}`)
    else compared++
    seen.add(b)
  }
  t.equal(compared, bars, 'a symbol polled five times per bar answers as one sent one candle per bar')
  t.ok(seen.size > 3, `the history moves the answer (${seen.size} distinct)`)
})

t.test('max_symbols: the least recently used symbol loses its state', async (t) => {
  const small = await startServer(t, { max_symbols: 3 })
  // `subject` never sees AAA or CCC: there they are symbols without state.
  const fresh = subject
  const rand = rng(13)
  const historyBars = 30
  const seriesA = candles(historyBars + 1, rand, 600)
  const seriesC = candles(historyBars + 1, rand, 30)

  // A builds a long history on both servers.
  for (let bar = 0; bar < historyBars; bar++) {
    const req = candleRequest('AAA', bar, seriesA[bar]!, rand)
    t.equal(await predict(t, small.url, req), await predict(t, reference.url, req))
  }
  // Then B, C (with its own history) and D: D is the fourth symbol, so A, the idlest, goes.
  await predict(t, small.url, candleRequest('BBB', historyBars, seriesA[0]!, rand))
  for (let bar = 0; bar < historyBars; bar++) {
    const req = candleRequest('CCC', bar, seriesC[bar]!, rand)
    t.equal(await predict(t, small.url, req), await predict(t, reference.url, req))
  }
  await predict(t, small.url, candleRequest('DDD', historyBars, seriesA[1]!, rand))
  const health = await getJson(`${small.url}/health`)
  t.equal(health.body.symbols, 3, '/health counts at most max_symbols symbols')

  const nextA = candleRequest('AAA', historyBars, seriesA[historyBars]!, rand)
  const evictedA = await predict(t, small.url, nextA)
  const freshA = await predict(t, fresh.url, nextA)
  const keptA = await predict(t, reference.url, nextA)
  t.equal(evictedA, freshA, 'A answers as a symbol never seen: its state was dropped')
  t.not(keptA, freshA, 'A\'s history changes its answer (else the eviction check proves nothing)')

  // A's return evicted B (the idlest now); C was used after B and must have kept its state.
  const nextC = candleRequest('CCC', historyBars, seriesC[historyBars]!, rand)
  const survivedC = await predict(t, small.url, nextC)
  t.equal(survivedC, await predict(t, reference.url, nextC), 'C answers as on a server that replayed its history')
  t.not(survivedC, await predict(t, fresh.url, nextC), 'C\'s history changes its answer')
  t.equal((await getJson(`${small.url}/health`)).body.symbols, 3)
})

t.test('max_symbols: recency, not age, decides which symbol goes', async (t) => {
  const small = await startServer(t, { max_symbols: 3 })
  const fresh = subject
  const rand = rng(15)
  const n = 20
  const series = { EA: candles(n + 2, rand, 200), EB: candles(n + 2, rand, 300), EC: candles(n + 2, rand, 400) }
  const send = async (symbol: keyof typeof series, bar: number, server = small): Promise<number> =>
    predict(t, server.url, candleRequest(symbol, bar, series[symbol][bar]!, rand))

  // EA, EB, EC in that order of arrival; then EA is used again, so EB is the idlest.
  for (const s of ['EA', 'EB', 'EC'] as const) {
    for (let bar = 0; bar < n; bar++) t.equal(await send(s, bar), await send(s, bar, reference))
  }
  t.equal(await send('EA', n), await send('EA', n, reference))
  await predict(t, small.url, { symbol: 'ED', price: 1, timestamp_ms: barTs(n) })

  // EB was dropped (a FIFO would have dropped EA instead)...
  const nextB = candleRequest('EB', n, series.EB[n]!, rand)
  const b = await predict(t, small.url, nextB)
  t.equal(b, await predict(t, fresh.url, nextB), 'EB, the least recently used, lost its state')
  t.not(b, await predict(t, reference.url, nextB), 'EB\'s history changes its answer')
  // ...and EA, the oldest by arrival but recently used, kept its state.
  const nextA = candleRequest('EA', n + 1, series.EA[n + 1]!, rand)
  const a = await predict(t, small.url, nextA)
  t.equal(a, await predict(t, reference.url, nextA), 'EA, used recently, kept its state')
  t.not(a, await predict(t, fresh.url, nextA), 'EA\'s history changes its answer')
})

t.test('300 concurrent requests each get their own answer', async (t) => {
  const busy = subject
  const alone = reference
  const rand = rng(14)
  const n = 300
  const symbols = Array.from({ length: n }, (_, i) => `CONC${i}`)
  const series = symbols.map(() => candles(4, rand, 10 + rand() * 1000))

  // Three bars of history per symbol, sent as one batch to each server, so that answers differ.
  const history = symbols.flatMap((s, i) => [0, 1, 2].map((bar) => candleRequest(s, bar, series[i]![bar]!, rand)))
  for (const url of [busy.url, alone.url]) {
    for (let i = 0; i < history.length; i += 900) {
      const res = await postJson(`${url}/predict/batch`, { requests: history.slice(i, i + 900) })
      t.equal(res.status, 200)
    }
  }

  const finals = symbols.map((s, i) => candleRequest(s, 3, series[i]![3]!, rand))
  const together = await Promise.all(finals.map((body) => postJson(`${busy.url}/predict`, body)))
  let mismatches = 0
  const seen = new Set<number>()
  for (let i = 0; i < n; i++) {
    const single = await postJson(`${alone.url}/predict`, finals[i])
    const got = together[i]!
    t.equal(got.status, 200)
    if (got.body?.symbol !== symbols[i] || got.body?.probability_long !== single.body.probability_long) {
      mismatches++
      t.fail(`request ${i}: concurrent ${JSON.stringify(got.body)} != alone ${JSON.stringify(single.body)}`)
    }
    seen.add(single.body.probability_long)
  }
  t.equal(mismatches, 0, 'every concurrent answer equals the answer its input gets alone')
  t.ok(seen.size >= 50, `inputs give varied answers (${seen.size} distinct)`)
})
