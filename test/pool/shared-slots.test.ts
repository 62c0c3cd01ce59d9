/**
 * The shared-memory transport's fault path, deterministically: a fake Piscina hands over each
 * slot's buffer and lets the test end a serve task as a dying worker would. (Killing a real worker
 * thread while onnxruntime-node is inside session.run aborts the whole process, an
 * onnxruntime-node teardown hazard, so the real-server test kills parked workers only.)
 */
import t from 'tap'
import type { Piscina } from 'piscina'
import { kSlotControlBytes, kSlotDone, kSlotRequest, kSlotState } from '../../src/pool/messages.js'
import { runBatch } from '../../src/batching/dynamic-batcher.js'
import { SharedSlots } from '../../src/pool/shared-slots.js'

const kFeatures = 4

interface ServeTask { buffer: SharedArrayBuffer, die: (err: Error) => void }

function fakePiscina (tasks: ServeTask[]): Piscina {
  return {
    run (task: { slot: SharedArrayBuffer }) {
      return new Promise<number>((_resolve, reject) => { tasks.push({ buffer: task.slot, die: reject }) })
    },
  } as unknown as Piscina
}

const tick = (): Promise<void> => new Promise(resolve => { setImmediate(resolve) })

t.test('a worker that dies with a batch in flight: that batch fails at once, the slot serves again', async (t) => {
  const tasks: ServeTask[] = []
  const lost: unknown[] = []
  const slots = new SharedSlots(fakePiscina(tasks), 1, 8, kFeatures, (err) => { lost.push(err) })
  t.equal(tasks.length, 1, 'one serve task per worker')

  const inFlight = runBatch(slots, new ArrayBuffer(8 * kFeatures * 4), 2)
  const queued = runBatch(slots, new ArrayBuffer(8 * kFeatures * 4), 1) // waits for the only slot
  const first = new Int32Array(tasks[0]!.buffer, 0, kSlotControlBytes / 4)
  t.equal(Atomics.load(first, kSlotState), kSlotRequest, 'the batch is at the worker')

  tasks[0]!.die(new Error('worker terminated'))
  await t.rejects(inFlight, { code: 'ERR_INFERENCE' }, 'its batch is answered with an error at once')
  t.equal(lost.length, 1, 'the loss is reported')
  t.equal(tasks.length, 2, 'a new serve task was started for the slot (Piscina replaces the thread)')
  t.not(tasks[1]!.buffer, tasks[0]!.buffer, 'on a fresh buffer: a late wake-up on the old one cannot be mistaken')

  // The queued batch went to the renewed slot; the replacement worker answers it.
  const control = new Int32Array(tasks[1]!.buffer, 0, kSlotControlBytes / 4)
  const data = new Float32Array(tasks[1]!.buffer, kSlotControlBytes)
  await tick()
  t.equal(Atomics.load(control, kSlotState), kSlotRequest, 'the queued batch is posted to the new worker')
  data[0] = 0.25
  data[1] = 7
  Atomics.store(control, kSlotState, kSlotDone)
  Atomics.notify(control, kSlotState)
  const answer = await queued
  t.equal(new Float32Array(answer)[0], 0.25, 'and answered')
  await slots.close(true)
})
