/**
 * A model set served (issue 14), over real HTTP with the shipped example set
 * (models/ensemble_phase2_v1.set.json: the XGBoost tree and the GAF-CNN).
 *
 * No training/serving skew: training/train_gaf_cnn.py wrote golden rows, each the 32 closes (and
 * BTC's) a test-split window was built from, with PyTorch's P(up) for it. Here those closes are
 * sent to the server as 32 one-minute bars of a fresh symbol; the CNN member's probability in the
 * answer (`components`) must be PyTorch's: the window went through the batch row's window block,
 * the member pool's slot and the worker's GAF transform, the path every served request takes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { InferenceGate } from '../helpers/inference-gate.js'
import { copyShippedModels } from '../helpers/model-fixtures.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kModels = fileURLToPath(new URL('../../models/', import.meta.url))
const kSet = `${kModels}ensemble_phase2_v1.set.json`
const golden = JSON.parse(readFileSync(`${kModels}gaf_cnn_phase2_v1.golden.json`, 'utf8')) as {
  open_time_ms: number[], closes: number[][], btc_closes: number[][], probabilities: number[]
}
const setFile = JSON.parse(readFileSync(kSet, 'utf8')) as { members: Array<{ weight: number }> }
const [wTree, wCnn] = setFile.members.map(m => m.weight) as [number, number]
/** Golden rows sent (each is a symbol of 32 bars). */
const kRows = 6

/** The request for bar `j` of golden row `i`: the close as price, BTC's close, inside the bar. */
function barRequest (i: number, j: number): Record<string, unknown> {
  const close = golden.closes[i]![j]!
  return {
    symbol: `GOLD${i}`,
    price: close,
    open: close,
    high: close * 1.0005,
    low: close * 0.9995,
    volume: 100 + j,
    btc_price: golden.btc_closes[i]![j]!,
    timestamp_ms: golden.open_time_ms[i]! - (31 - j) * 60_000 + 30_000,
  }
}

t.test('the CNN member answers what PyTorch answered for the same closes; the tree answers until it can', async (t) => {
  const { url } = await startServer(t, { model_path: kSet, workers: 1 })
  const tree = await startServer(t, { workers: 1 })
  for (let i = 0; i < kRows; i++) {
    for (let j = 0; j < 32; j++) {
      const body = barRequest(i, j)
      const [res, alone] = await Promise.all([postJson(`${url}/predict`, body), postJson(`${tree.url}/predict`, body)])
      t.equal(res.status, 200)
      const a = res.body
      t.equal(a.model_version, 'ensemble_phase2_v1')
      t.equal(a.components.length, 2, 'one component per member')
      const [ct, cc] = a.components
      t.equal(ct.model_version, 'xgboost_phase1_v2_calibrated')
      t.equal(cc.model_version, 'gaf_cnn_phase2_v1')
      // The tree member is the tree model: same stream, same features, same probability.
      t.equal(ct.probability_long, alone.body.probability_long, `row ${i} bar ${j}: the tree member answers as the tree model alone`)
      if (j < 31) {
        // Fewer than 32 closes: the CNN is left out and the tree's weight renormalized to 1.
        if (cc.status !== 'no_history' || ct.weight !== 1 || a.probability_long !== ct.probability_long) {
          t.fail(`row ${i} bar ${j}: with ${j + 1} closes the CNN must be left out`, { components: a.components })
        }
        continue
      }
      t.equal(cc.status, 'used', `row ${i}: 32 closes, the CNN answers`)
      t.equal(cc.probability_long === null, false)
      t.ok(Math.abs(cc.probability_long - golden.probabilities[i]!) <= 1e-5 + 5e-7,
        `row ${i}: CNN ${cc.probability_long} vs PyTorch ${golden.probabilities[i]} (1e-5 and the 6-decimal rounding)`)
      t.ok(Math.abs(ct.weight - wTree / (wTree + wCnn)) <= 1e-6 && Math.abs(cc.weight - wCnn / (wTree + wCnn)) <= 1e-6, 'the declared weights, normalized')
      const mean = (wTree * ct.probability_long + wCnn * cc.probability_long) / (wTree + wCnn)
      t.ok(Math.abs(a.probability_long - mean) <= 2e-6, `row ${i}: the answer is the weighted mean (${a.probability_long} vs ${mean})`)
      t.equal(a.direction, a.probability_long >= 0.5 ? 'LONG' : 'SHORT')
    }
  }
  const metrics = await getJson(`${url}/metrics?format=json`)
  const members = metrics.body.model_set.members
  t.equal(metrics.body.model_set.set_version, 'ensemble_phase2_v1')
  t.equal(members[0].rows_used, kRows * 32, 'the tree answered every request')
  t.equal(members[1].rows_used, kRows, 'the CNN answered the last bar of each row')
  t.equal(members[1].rows_no_history, kRows * 31, 'and was left out of the others')
  const prom = await fetch(`${url}/metrics/prometheus`).then(r => r.text())
  t.match(prom, /ml_set_member_rows_total\{member="gaf_cnn_phase2_v1",outcome="used"\} 6/)
})

t.test('two workers per member, 16 symbols at once: every answer is its own request\'s', async (t) => {
  // Two batches in flight at once: each must get its own members' answers back.
  const dir = t.testdir({})
  copyShippedModels(dir, ['xgboost_phase1_v2_calibrated', 'gaf_cnn_phase2_v1'])
  const setPath = join(dir, 'wide.set.json')
  writeFileSync(setPath, JSON.stringify({
    set_version: 'wide', combiner: 'weighted_mean',
    members: [{ model: 'xgboost_phase1_v2_calibrated.onnx', weight: wTree, workers: 2 }, { model: 'gaf_cnn_phase2_v1.onnx', weight: wCnn, workers: 2 }],
  }))
  const { url } = await startServer(t, { model_path: setPath, workers: 2 })
  const tree = await startServer(t, { workers: 1 })
  const symbols = 16
  let mismatches = 0
  let cnnChecked = 0
  await Promise.all(Array.from({ length: symbols }, async (_, i) => {
    for (let j = 0; j < 32; j++) {
      // Jitter: closed-loop clients in lockstep would all land in one batch; staggered, a batch
      // leaves while another is still at the members.
      await new Promise(resolve => setTimeout(resolve, (i * 7 + j * 3) % 5))
      const body = { ...barRequest(i, j), symbol: `WIDE${i}` }
      const [res, alone] = await Promise.all([postJson(`${url}/predict`, body), postJson(`${tree.url}/predict`, body)])
      const [ct, cc] = res.body.components
      if (ct.probability_long !== alone.body.probability_long) mismatches++
      if (j === 31) {
        if (cc.status !== 'used' || Math.abs(cc.probability_long - golden.probabilities[i]!) > 1e-5 + 5e-7) mismatches++
        cnnChecked++
      }
    }
  }))
  t.equal(cnnChecked, symbols)
  t.equal(mismatches, 0, 'every tree part is the tree model\'s answer to the same request, every CNN part PyTorch\'s')
})

t.test('shedding and deadlines work for a set as for one model: 503 + Retry-After past the queue bound, 504 once expired', async (t) => {
  const { url, server } = await startServer(t, { model_path: kSet, workers: 1, max_queue_size: 2, max_batch_size: 1 })
  // The set is one runner to the batcher: holding its batches at the gate holds both members.
  const gate = new InferenceGate(server.service.currentModel!)
  const calls = Array.from({ length: 8 }, (_, i) => postJson(`${url}/predict`, { ...barRequest(5, 0), symbol: `SHED${i}`, deadline_ms: 300 }))
  await new Promise(resolve => setTimeout(resolve, 800))
  gate.open()
  const answers = await Promise.all(calls)
  const statuses = answers.map(a => a.status)
  t.ok(statuses.includes(503) && answers.some(a => a.status === 503 && a.headers.get('retry-after') === '1'), `some shed with Retry-After (${statuses.join(',')})`)
  t.ok(statuses.includes(504), `some expired (${statuses.join(',')})`)
  t.ok(statuses.every(s => s === 200 || s === 503 || s === 504), 'nothing else')
  const ok = answers.find(a => a.status === 200)
  t.equal(ok?.body.model_version, 'ensemble_phase2_v1', 'the held batch was answered by the set')
  const after = await postJson(`${url}/predict`, { ...barRequest(5, 1), symbol: 'SHED-AFTER' })
  t.equal(after.status, 200, 'serving again')
})

t.test('a gap longer than max_gap_bars resets the window: the CNN is left out until 32 bars again', async (t) => {
  const { url } = await startServer(t, { model_path: kSet, workers: 1, max_gap_bars: 5 })
  for (let j = 0; j < 32; j++) await postJson(`${url}/predict`, barRequest(0, j))
  const gapped = { ...barRequest(0, 31), timestamp_ms: (barRequest(0, 31).timestamp_ms as number) + 10 * 60_000 }
  const res = await postJson(`${url}/predict`, gapped)
  t.equal(res.status, 200)
  t.equal(res.body.components[1].status, 'no_history', 'after a 10-bar gap the history restarts')
})

t.test('a minute without btc_price inside the window leaves the CNN out (a missing close stays missing on its way to the worker)', async (t) => {
  const { url } = await startServer(t, { model_path: kSet, workers: 1 })
  let last: any = null
  for (let j = 0; j < 32; j++) {
    const body = barRequest(3, j)
    if (j === 10) delete body.btc_price
    last = await postJson(`${url}/predict`, body)
  }
  t.equal(last.status, 200)
  t.equal(last.body.components[1].status, 'no_history', 'BTC\'s close for bar 10 is missing: the GAF cannot be built')
  t.equal(last.body.probability_long, last.body.components[0].probability_long, 'the tree answers alone')
})

t.test('a member whose batch fails is left out of it; the other members still answer', async (t) => {
  const { url, server } = await startServer(t, { model_path: kSet, workers: 1 })
  for (let j = 0; j < 31; j++) await postJson(`${url}/predict`, barRequest(4, j))
  // The CNN member's next batch fails as if its session had thrown (the way test/helpers/
  // inference-gate.ts fails a single model's batch); the pool and the tree member are real.
  const set = server.models.serving as unknown as { models: Array<{ dispatchFrom: (...args: any[]) => void }> }
  const cnn = set.models[1]!
  const real = cnn.dispatchFrom.bind(cnn)
  cnn.dispatchFrom = (_source, _target, _rows, completion) => {
    cnn.dispatchFrom = real
    queueMicrotask(() => { completion.batchFailed(new Error('injected member failure')) })
  }
  const failed = await postJson(`${url}/predict`, barRequest(4, 31))
  t.equal(failed.status, 200, 'answered by the tree')
  t.same(failed.body.components.map((c: any) => [c.status, c.weight, c.probability_long === null]), [['used', 1, false], ['failed', 0, true]])
  t.equal(failed.body.probability_long, failed.body.components[0].probability_long)
  const next = await postJson(`${url}/predict`, { ...barRequest(4, 31), price: (barRequest(4, 31).price as number) * 1.0001 })
  t.equal(next.body.components[1].status, 'used', 'the next batch reaches the CNN again')
  const members = (await getJson(`${url}/metrics?format=json`)).body.model_set.members
  t.equal(members[1].rows_failed, 1, 'counted under rows_failed')
})

t.test('swaps between a single model and a set under traffic lose no request', async (t) => {
  const { server, url } = await startServer(t, { workers: 1 })
  let stop = false
  const versions = new Set<string>()
  let failures = 0
  let sent = 0
  const load = (async () => {
    const until = Date.now() + 20_000
    for (let j = 0; !stop && Date.now() < until; j++) {
      const res = await postJson(`${url}/predict`, { ...barRequest(1, j % 32), symbol: 'SWAP', timestamp_ms: undefined })
      sent++
      if (res.status !== 200) failures++
      else versions.add(res.body.model_version)
    }
  })()
  const toSet = await server.reloadModel(kSet, 'test')
  t.equal(toSet.ok, true, 'tree -> set')
  await new Promise(resolve => setTimeout(resolve, 300))
  const back = await server.reloadModel(`${kModels}xgboost_phase1_v2_calibrated.onnx`, 'test')
  t.equal(back.ok, true, 'set -> tree')
  await new Promise(resolve => setTimeout(resolve, 300))
  stop = true
  await load
  t.equal(failures, 0, `every one of ${sent} requests answered 200`)
  t.ok(versions.has('ensemble_phase2_v1') && versions.has('xgboost_phase1_v2_calibrated'), 'both served')
})

t.test('a set scored as the shadow of the tree model: windows are written for it', async (t) => {
  const { url } = await startServer(t, { workers: 1, shadow_model_path: kSet })
  for (let j = 0; j < 32; j++) {
    const res = await postJson(`${url}/predict`, barRequest(2, j))
    t.equal(res.body.model_version, 'xgboost_phase1_v2_calibrated')
    t.equal(res.body.components, undefined, 'a single model\'s answer has no components')
  }
  let shadow: any = null
  for (let k = 0; k < 50; k++) {
    shadow = (await getJson(`${url}/metrics?format=json`)).body.shadow
    if (shadow?.rows === 32) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.equal(shadow.model_version, 'ensemble_phase2_v1')
  t.equal(shadow.rows, 32, 'the set scored every row')
  // Its tree member is the serving model: the rows differ only where the CNN took part, which it
  // can only do if the rows carried their windows to the shadow.
  t.ok(shadow.max_abs_diff > 0, 'the CNN took part on the 32nd bar')
  t.ok(shadow.direction_agreement >= 31 / 32, 'and nowhere else')
})
