import type { LoadSpec } from '../../bench/lib/load-types.js'
import { kPredictBody } from '../../bench/lib/request-bodies.js'

/** A small /predict load for tests; override what the test is about. */
export function testSpec (over: Partial<LoadSpec>): LoadSpec {
  return {
    transport: 'http',
    path: '/predict',
    body: kPredictBody,
    rowsPerRequest: 1,
    mode: 'closed',
    connections: 2,
    pipeline: 1,
    rate: null,
    warmupMs: 100,
    durationMs: 500,
    timeoutMs: 2000,
    maxRequests: null,
    threads: 1,
    ...over,
  }
}
