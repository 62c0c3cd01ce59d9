import { completeFrom, runBatch, type BatchRunner } from '../../src/batching/dynamic-batcher.js'

/**
 * Holds a model's batches at a gate: what is dispatched waits (still "at the worker" for the
 * batcher) until `open()`, so a test can pile requests up behind it. Runs on the real pool once
 * open; `failNext()` makes the next batch fail as if the session had thrown.
 */
export class InferenceGate {
  private release!: () => void
  private readonly gate = new Promise<void>((resolve) => { this.release = resolve })
  private failing = false

  constructor (model: BatchRunner) {
    // The runner's own dispatch, kept: the gate runs batches on the real pool once open.
    const real = { dispatch: model.dispatch.bind(model) }
    const run = (buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> => runBatch(real, buffer, rows)
    const gated = async (buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> => {
      await this.gate
      if (this.failing) {
        this.failing = false
        throw new Error('injected inference failure')
      }
      return run(buffer, rows)
    }
    model.dispatch = (buffer, rows, completion) => { completeFrom(gated(buffer, rows), completion) }
  }

  open (): void { this.release() }
  failNext (): void { this.failing = true }
}
