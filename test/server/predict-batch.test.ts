/**
 * POST /predict/batch over real HTTP: order, per-item errors with their index in `loc`, the
 * whole-body shape errors, and the oracle property that a batched answer equals the answer the
 * same input gets alone (STYLE B8, "Batched answers must equal single-request answers").
 */
import t, { type Test } from 'tap'
import { getJson, postJson, startServer } from '../helpers/start-server.js'
import { prng as rng } from '../helpers/prng.js'
import { marketFields } from '../helpers/market-request.js'

const kBarMs = 60_000
/** Start of a bar two hours back: explicit timestamps keep every request in one known bar. */
const kBar = Math.floor((Date.now() - 2 * 3_600_000) / kBarMs) * kBarMs


/** A full, valid request for `symbol`, varied enough that the model's answers differ. */
function marketRequest (symbol: string, rand: () => number, tsOffsetMs = 0): Record<string, unknown> {
  return { ...marketFields(symbol, rand), timestamp_ms: kBar + tsOffsetMs }
}

function assertPrediction (t: Test, item: any, symbol: string): void {
  t.match(item, { direction: /^(LONG|SHORT)$/, confidence: Number, probability_long: Number, model_version: 'xgboost_phase1_v2_calibrated', symbol, latency_ms: Number })
  t.notOk('error' in item, 'a prediction, not an error')
}

function assertItemError (t: Test, item: any, loc: ReadonlyArray<string | number>, type?: string): void {
  t.equal(item?.error, 'INVALID_ARGUMENT')
  t.equal(item?.status_code, 422)
  t.ok(Array.isArray(item?.detail) && item.detail.length > 0, 'detail is a non-empty list')
  const hit = (item?.detail ?? []).find((d: any) => JSON.stringify(d.loc) === JSON.stringify(loc))
  t.ok(hit, `an issue at ${JSON.stringify(loc)} (got ${JSON.stringify(item?.detail)})`)
  if (hit !== undefined) {
    t.type(hit.msg, 'string')
    t.type(hit.type, 'string')
    if (type !== undefined) t.equal(hit.type, type)
  }
}

function assertShapeError (t: Test, res: { status: number, body: any }, loc: ReadonlyArray<string | number>, type: string): void {
  t.equal(res.status, 422)
  t.equal(res.body?.detail?.length, 1, JSON.stringify(res.body))
  t.same(res.body?.detail?.[0]?.loc, loc)
  t.equal(res.body?.detail?.[0]?.type, type)
  t.type(res.body?.detail?.[0]?.msg, 'string')
}

async function assertServes (t: Test, url: string): Promise<void> {
  const single = await postJson(`${url}/predict`, { price: 612.5, symbol: 'GOODUSDT' })
  t.equal(single.status, 200, 'the server still answers a good /predict')
  const batch = await postJson(`${url}/predict/batch`, { requests: [{ price: 612.5, symbol: 'GOODUSDT' }] })
  t.equal(batch.status, 200, 'and a good /predict/batch')
  t.equal(batch.body?.predictions?.length, 1)
}

// Shared by the tests that need default settings; each uses its own symbols.
const main = await startServer(t)
const reference = await startServer(t)

t.test('valid and invalid items, answered in order', async (t) => {
  const { url } = main
  const rand = rng(1)
  const items: unknown[] = [
    marketRequest('AAA', rand),
    { price: -1, symbol: 'BBB' },
    marketRequest('CCC', rand),
    'a string',
    { price: 'x', volume: -1, symbol: 'DDD' },
    marketRequest('EEE', rand),
    null,
    [1, 2],
    { symbol: 'bad symbol!', price: 10 },
    { price: 10, timestamp_ms: 1.5 },
    { __note: 'no price' },
    { price: 612.5 },
  ]
  const before = await getJson(`${url}/metrics`)
  const res = await postJson(`${url}/predict/batch`, { requests: items })
  t.equal(res.status, 200)
  const p = res.body.predictions
  t.equal(p.length, items.length, 'one answer per request')
  assertPrediction(t, p[0], 'AAA')
  assertItemError(t, p[1], ['body', 'requests', 1, 'price'], 'value_error.number.not_gt')
  assertPrediction(t, p[2], 'CCC')
  assertItemError(t, p[3], ['body', 'requests', 3], 'type_error.dict')
  assertItemError(t, p[4], ['body', 'requests', 4, 'price'], 'type_error.float')
  assertItemError(t, p[4], ['body', 'requests', 4, 'volume'], 'value_error.number.not_ge')
  assertPrediction(t, p[5], 'EEE')
  assertItemError(t, p[6], ['body', 'requests', 6], 'type_error.dict')
  assertItemError(t, p[7], ['body', 'requests', 7], 'type_error.dict')
  assertItemError(t, p[8], ['body', 'requests', 8, 'symbol'], 'value_error.str.regex')
  assertItemError(t, p[9], ['body', 'requests', 9, 'timestamp_ms'], 'type_error.integer')
  assertItemError(t, p[10], ['body', 'requests', 10, 'price'], 'value_error.missing')
  assertPrediction(t, p[11], 'WBNBUSDT')

  const after = await getJson(`${url}/metrics`)
  const d = (after.body.errors_by_code.ERR_VALIDATION ?? 0) - (before.body.errors_by_code.ERR_VALIDATION ?? 0)
  t.equal(d, 8, 'each invalid item counts once in errors_by_code.ERR_VALIDATION')
  t.equal(after.body.predictions_total - before.body.predictions_total, 4, 'each valid item counts as a prediction')
  await assertServes(t, url)
})

t.test('items of one symbol are applied in order: an older bar after a newer one is stale', async (t) => {
  const { url } = main
  const rand = rng(2)
  const res = await postJson(`${url}/predict/batch`, {
    requests: [
      marketRequest('ORD', rand, 3 * kBarMs),
      marketRequest('ORD', rand, 1 * kBarMs),
      marketRequest('ORD', rand, 3 * kBarMs + 10),
    ],
  })
  t.equal(res.status, 200)
  assertPrediction(t, res.body.predictions[0], 'ORD')
  assertItemError(t, res.body.predictions[1], ['body', 'requests', 1, 'timestamp_ms'], 'value_error.timestamp.stale')
  assertPrediction(t, res.body.predictions[2], 'ORD')
  await assertServes(t, url)
})

t.test('whole-body errors', async (t) => {
  const { url } = await startServer(t, { max_batch_requests: 5 })
  const rand = rng(3)
  const five = Array.from({ length: 5 }, (_, i) => marketRequest(`LEN${i}`, rand))

  // status 'answered': deep nesting may be refused whole (400/422) or per item (200), never a crash.
  const cases: Array<{ name: string, body: unknown, raw?: boolean, status: 400 | 422 | 'answered', loc?: ReadonlyArray<string | number>, type?: string }> = [
    { name: 'longer than max_batch_requests', body: { requests: [...five, marketRequest('LEN5', rand)] }, status: 422, loc: ['body', 'requests'], type: 'value_error.list.max_items' },
    { name: 'far longer than max_batch_requests', body: { requests: new Array(1000).fill({ price: 1 }) }, status: 422, loc: ['body', 'requests'], type: 'value_error.list.max_items' },
    { name: 'requests missing', body: {}, status: 422, loc: ['body', 'requests'], type: 'value_error.missing' },
    { name: 'requests null', body: { requests: null }, status: 422, loc: ['body', 'requests'], type: 'value_error.missing' },
    { name: 'requests an object', body: { requests: { 0: { price: 1 } } }, status: 422, loc: ['body', 'requests'], type: 'type_error.list' },
    { name: 'requests a string', body: { requests: 'x' }, status: 422, loc: ['body', 'requests'], type: 'type_error.list' },
    { name: 'requests a number', body: { requests: 3 }, status: 422, loc: ['body', 'requests'], type: 'type_error.list' },
    { name: 'body a list of requests', body: [{ price: 1 }], status: 422, loc: ['body'], type: 'type_error.dict' },
    { name: 'body a number', body: 5, status: 422, loc: ['body'], type: 'type_error.dict' },
    { name: 'body null', body: null, status: 422, loc: ['body'], type: 'type_error.dict' },
    { name: '__proto__ smuggling requests', body: '{"__proto__": {"requests": [{"price": 1}]}}', raw: true, status: 422, loc: ['body', 'requests'], type: 'value_error.missing' },
    { name: 'not JSON', body: '{"requests": [', raw: true, status: 400 },
    { name: 'empty body', body: '', raw: true, status: 400 },
    { name: 'nested 100k deep', body: '{"requests": [' + '['.repeat(100_000) + ']'.repeat(100_000) + ']}', raw: true, status: 'answered' },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const res = await postJson(`${url}/predict/batch`, c.body, c.raw === true)
      if (c.status === 'answered') {
        t.ok(res.status === 400 || res.status === 422 || res.status === 200, `answered, ${res.status}`)
        if (res.status === 200) assertItemError(t, res.body.predictions[0], ['body', 'requests', 0], 'type_error.dict')
      } else if (c.status === 400) {
        t.equal(res.status, 400)
        t.type(res.body?.detail, 'string')
      } else {
        assertShapeError(t, res, c.loc!, c.type!)
      }
      await assertServes(t, url)
    })
  }

  await t.test('exactly max_batch_requests is accepted', async (t) => {
    const res = await postJson(`${url}/predict/batch`, { requests: five })
    t.equal(res.status, 200)
    t.equal(res.body.predictions.length, 5)
    res.body.predictions.forEach((p: any, i: number) => { assertPrediction(t, p, `LEN${i}`) })
  })

  await t.test('an empty list answers an empty list', async (t) => {
    const res = await postJson(`${url}/predict/batch`, { requests: [] })
    t.equal(res.status, 200)
    t.same(res.body, { predictions: [] })
  })
})

t.test('a batch of 200 distinct symbols equals 200 single requests on a fresh server', async (t) => {
  const batchServer = main
  // Fresh for these symbols: it has never seen a BAT* symbol.
  const singleServer = reference
  const rand = rng(4)
  const n = 200
  // Every 10th item is invalid, so a misplaced answer or an off-by-one in the tags shows.
  const items = Array.from({ length: n }, (_, i) =>
    i % 10 === 7 ? { symbol: `BAT${i}`, price: -i } : marketRequest(`BAT${i}`, rand, (i * 137) % kBarMs))

  const res = await postJson(`${batchServer.url}/predict/batch`, { requests: items })
  t.equal(res.status, 200)
  const predictions: any[] = res.body.predictions
  t.equal(predictions.length, n)

  const probabilities = new Set<number>()
  let mismatches = 0
  for (let i = 0; i < n; i++) {
    const single = await postJson(`${singleServer.url}/predict`, items[i])
    if (i % 10 === 7) {
      t.equal(single.status, 422)
      assertItemError(t, predictions[i], ['body', 'requests', i, 'price'], 'value_error.number.not_gt')
      continue
    }
    t.equal(single.status, 200)
    const b = predictions[i]
    if (b?.symbol !== `BAT${i}` || b?.probability_long !== single.body.probability_long ||
        b?.direction !== single.body.direction || b?.confidence !== single.body.confidence) {
      mismatches++
      t.fail(`item ${i}: batch ${JSON.stringify(b)} != single ${JSON.stringify(single.body)}`)
    }
    probabilities.add(single.body.probability_long)
  }
  t.equal(mismatches, 0, 'every batched answer equals its single-request answer')
  // Otherwise the comparison could not tell one item's answer from another's.
  t.ok(probabilities.size >= 20, `inputs give varied answers (${probabilities.size} distinct)`)
  await assertServes(t, batchServer.url)
})
