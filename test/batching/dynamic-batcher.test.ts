/**
 * The batcher's scheduling rules, driven through its public API with a runner whose batches the
 * test completes by hand (the pool is not the unit under test here; the server tests use the
 * real one).
 */
import t from 'tap'
import { DynamicBatcher, type BatchCompletion, type BatchRunner } from '../../src/batching/dynamic-batcher.js'
import {
  kStatusDeadlineExceeded, kStatusInternal, kStatusOk, type PendingRequest, type PredictionSink,
} from '../../src/batching/pending-request.js'
import { kRowFloats } from '../../src/features/row-layout.js'

interface Sent { buffer: ArrayBuffer, rows: number, firstFeatures: number[], resolve: (b: ArrayBuffer) => void, reject: (e: unknown) => void }

class ManualRunner implements BatchRunner {
  readonly modelVersion = 'manual'
  readonly modelVersionJson = '"manual"'
  readonly windowed = false
  readonly sent: Sent[] = []
  constructor (readonly workers: number) {}
  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    const features = new Float32Array(buffer)
    const firstFeatures = Array.from({ length: rows }, (_, i) => features[i * kRowFloats]!)
    this.sent.push({ buffer, rows, firstFeatures, resolve: (b) => { completion.batchDone(b) }, reject: (e) => { completion.batchFailed(e) } })
  }
  componentsOf (): null { return null }
  /** Answers batch `i` with probability = the row's first feature / 1000. */
  answer (i: number): void {
    const b = this.sent[i]!
    const out = new Float32Array(b.buffer)
    for (let r = 0; r < b.rows; r++) out[r] = b.firstFeatures[r]! / 1000
    out[b.rows] = 5
    b.resolve(b.buffer)
  }
}

class Collect implements PredictionSink {
  readonly got: Array<{ tag: number, status: number, p: number }> = []
  complete (r: PendingRequest): void { this.got.push({ tag: r.tag, status: r.status, p: r.probability }) }
}

const noMetrics = { recordQueueWait () {}, recordBatch () {}, recordBatchFailure () {} }

function submit (b: DynamicBatcher, sink: PredictionSink, tag: number, deadlineMs = 60_000): void {
  const rows = b.openRow()
  rows[b.rowOffset()] = tag // the row's first feature identifies the request
  const req = b.acquire()
  req.sink = sink
  req.tag = tag
  req.admittedMs = performance.now()
  req.deadlineMs = performance.now() + deadlineMs
  b.commit(req)
}

const flush = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

/** A batcher fed by a ManualRunner of `workers`, answering into one Collect sink. */
function setup (workers: number, options: { maxBatchSize: number, maxQueueSize: number, maxQueueDelayUs?: number }): { runner: ManualRunner, b: DynamicBatcher, sink: Collect } {
  const runner = new ManualRunner(workers)
  const b = new DynamicBatcher({ maxQueueDelayUs: 0, ...options }, noMetrics)
  b.setRunner(runner)
  return { runner, b, sink: new Collect() }
}

t.test('work-conserving: a lone request goes to an idle worker in the turn it arrived, alone', async (t) => {
  const { runner, b, sink } = setup(2, { maxBatchSize: 8, maxQueueSize: 64 })
  submit(b, sink, 7)
  t.equal(runner.sent.length, 0, 'not inside the socket callback that submitted it')
  await flush()
  t.equal(runner.sent.length, 1, 'dispatched at the end of the turn, no timer, not held back for company')
  t.equal(runner.sent[0]!.rows, 1)
  runner.answer(0)
  await flush()
  t.same(sink.got, [{ tag: 7, status: kStatusOk, p: Math.fround(7 / 1000) }])
})

t.test('requests that arrive in the same turn leave together: one worker wake-up, not one each', async (t) => {
  const { runner, b, sink } = setup(2, { maxBatchSize: 8, maxQueueSize: 64 })
  for (let i = 1; i <= 3; i++) submit(b, sink, i)
  await flush()
  t.same(runner.sent.map(s => s.firstFeatures), [[1, 2, 3]], 'one batch of three, although two workers were idle')
  runner.answer(0)
  t.same(sink.got.map(g => g.tag), [1, 2, 3])
})

t.test('while every worker is busy, requests gather into batches of at most max_batch_size', async (t) => {
  const { runner, b, sink } = setup(1, { maxBatchSize: 4, maxQueueSize: 64 })
  submit(b, sink, 1)
  await flush()
  t.equal(runner.sent.length, 1, 'the one worker took the first request')
  for (let i = 2; i <= 10; i++) submit(b, sink, i)
  await flush()
  t.equal(runner.sent.length, 1, 'the rest wait while it is busy')
  t.equal(b.queueDepth, 9)
  runner.answer(0)
  t.equal(runner.sent.length, 2, 'a worker that frees takes the next batch at once')
  t.same(runner.sent[1]!.firstFeatures, [2, 3, 4, 5], 'the oldest full batch goes first, rows in arrival order')
  runner.answer(1)
  t.same(runner.sent[2]!.firstFeatures, [6, 7, 8, 9])
  runner.answer(2)
  t.same(runner.sent[3]!.firstFeatures, [10])
  runner.answer(3)
  await flush()
  t.same(sink.got.map(g => g.tag), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every request answered once')
  t.ok(sink.got.every(g => g.p === Math.fround(g.tag / 1000)), 'each answer is its own row\'s')
  t.equal(b.depth, 0)
})

t.test('the queue is bounded: canAdmit turns false at max_queue_size', async (t) => {
  const { b, sink } = setup(1, { maxBatchSize: 2, maxQueueSize: 3 })
  submit(b, sink, 1)
  await flush() // in flight, not queued
  for (let i = 2; i <= 4; i++) { t.ok(b.canAdmit()); submit(b, sink, i) }
  t.notOk(b.canAdmit(), 'three queued: the fourth would be shed')
})

t.test('requests that idle workers take at the end of the turn do not count against the bound', async (t) => {
  const { runner, b, sink } = setup(2, { maxBatchSize: 2, maxQueueSize: 1 })
  for (let i = 1; i <= 5; i++) { t.ok(b.canAdmit(), `request ${i}: two idle workers take 2 x 2 rows, then one may wait`); submit(b, sink, i) }
  t.notOk(b.canAdmit(), 'a sixth would wait beyond max_queue_size')
  await flush()
  t.same(runner.sent.map(s => s.firstFeatures), [[1, 2], [3, 4]], 'both workers took a full batch')
  t.equal(b.queueDepth, 1)
  t.notOk(b.canAdmit(), 'workers busy: the one waiting fills the queue')
})

t.test('requests past their deadline are dropped before inference', async (t) => {
  const { runner, b, sink } = setup(1, { maxBatchSize: 8, maxQueueSize: 64 })
  submit(b, sink, 1)
  await flush()
  submit(b, sink, 2, 1) // 1 ms deadline, expires while the worker is busy
  submit(b, sink, 3)
  await new Promise(resolve => setTimeout(resolve, 10))
  runner.answer(0)
  await flush()
  t.same(runner.sent[1]!.firstFeatures, [3], 'the expired row was taken out; the others compacted')
  t.same(sink.got.find(g => g.tag === 2), { tag: 2, status: kStatusDeadlineExceeded, p: NaN })
  runner.answer(1)
  await flush()
  t.equal(sink.got.find(g => g.tag === 3)!.status, kStatusOk)
})

t.test('a failed batch answers every one of its requests INTERNAL at once; the next batch carries on', async (t) => {
  const { runner, b, sink } = setup(1, { maxBatchSize: 8, maxQueueSize: 64 })
  submit(b, sink, 1)
  await flush()
  submit(b, sink, 2)
  submit(b, sink, 3)
  await flush()
  runner.sent[0]!.reject(new Error('worker died'))
  await flush()
  t.same(sink.got, [{ tag: 1, status: kStatusInternal, p: NaN }])
  t.same(runner.sent[1]!.firstFeatures, [2, 3], 'the queued requests went to the next batch')
  runner.answer(1)
  await flush()
  t.same(sink.got.slice(1).map(g => g.status), [kStatusOk, kStatusOk])
})

t.test('max_batch_size 1 turns batching off', async (t) => {
  const { runner, b, sink } = setup(1, { maxBatchSize: 1, maxQueueSize: 64 })
  for (let i = 1; i <= 5; i++) submit(b, sink, i)
  await flush()
  for (let i = 0; i < 5; i++) { runner.answer(i); await flush() }
  t.same(runner.sent.map(s => s.rows), [1, 1, 1, 1, 1])
})

t.test('max_queue_delay_us holds a partly filled batch for company, never longer, never past capacity', async (t) => {
  // A delay long enough that a stalled CI process (GC, preemption) cannot use it up between
  // submit(5) and the "held again" check below, which would send the batch before it is looked at.
  const kDelayMs = 500
  const { runner, b, sink } = setup(1, { maxBatchSize: 4, maxQueueSize: 64, maxQueueDelayUs: kDelayMs * 1000 })
  submit(b, sink, 1)
  submit(b, sink, 2)
  await flush()
  t.equal(runner.sent.length, 0, 'held while the batch is not full, past the end of the turn')
  submit(b, sink, 3)
  submit(b, sink, 4)
  await flush()
  t.equal(runner.sent.length, 1, 'sent as soon as it is full (at the end of that turn)')
  t.same(runner.sent[0]!.firstFeatures, [1, 2, 3, 4])
  const opened = performance.now()
  submit(b, sink, 5)
  runner.answer(0)
  await flush()
  t.equal(runner.sent.length, 1, 'a new partial batch is held again')
  // Its timer sends it; waited for with a bound far above the delay (a late timer on a loaded
  // machine is not a failure, a timer that never fires or waits far too long is).
  while (runner.sent.length < 2 && performance.now() - opened < kDelayMs + 10_000) await new Promise(resolve => setTimeout(resolve, 5))
  const heldMs = performance.now() - opened
  t.equal(runner.sent.length, 2, `and sent when its delay ran out (after ${heldMs.toFixed(0)} ms)`)
  // Lenient: libuv arms timers from the loop's cached clock, so one may fire a little early.
  t.ok(heldMs >= kDelayMs / 2, `held for about the delay, not sent early (${heldMs.toFixed(0)} ms of ${kDelayMs})`)
  t.same(runner.sent[1]!.firstFeatures, [5])
  runner.answer(1)
  await flush()
})
