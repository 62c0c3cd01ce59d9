/**
 * How much the fuzz tests run. The defaults fit CI (about half a minute for all of test/fuzz on
 * two shared cores); the environment scales them up for a long hunt:
 *
 *   FUZZ_RUNS=200000 FUZZ_SERVER_RUNS=5000 FUZZ_TIME_MS=600000 npx tap --timeout 0 test/fuzz/*.test.ts
 *
 * - FUZZ_RUNS: cases per in-process property (decoders called directly).
 * - FUZZ_SERVER_RUNS: frames or bodies per property sent to the real server on loopback.
 * - FUZZ_TIME_MS: time budget of each property; it stops early (without failing) when spent.
 * - FUZZ_SEED: replays a run. fast-check prints the seed and the shrunk counterexample of a
 *   failure; rerun with that seed to reproduce it.
 *
 * Not a *.test.ts file: tap does not run it.
 */
import type { Parameters as FcParameters } from 'fast-check'

function intFromEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`)
  return n
}

export const kFuzzRuns = intFromEnv('FUZZ_RUNS', 2000)
export const kServerRuns = intFromEnv('FUZZ_SERVER_RUNS', 150)
export const kTimeBudgetMs = intFromEnv('FUZZ_TIME_MS', 5000)
/** Fixed by default so CI failures reproduce; FUZZ_SEED picks another stream. */
export const kSeed = intFromEnv('FUZZ_SEED', 0x5eed10)

/** fast-check parameters for one property; `scale` shrinks the run count of slow properties. */
export function fcParams<T> (runs: number, scale = 1): FcParameters<T> {
  return {
    numRuns: Math.max(1, Math.round(runs * scale)),
    seed: kSeed,
    // A time budget, not a failure: a slow machine runs fewer cases instead of timing out.
    interruptAfterTimeLimit: kTimeBudgetMs,
    markInterruptAsFailure: false,
  }
}
