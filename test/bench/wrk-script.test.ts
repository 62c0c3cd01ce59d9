import { readFileSync } from 'node:fs'
import t from 'tap'
import { kPredictBody } from '../../bench/lib/request-bodies.js'
import { parseWrkOutput } from '../../bench/lib/wrk.js'

t.test('wrk sends byte for byte the body the bench sends', async (t) => {
  const lua = readFileSync(new URL('../../bench/wrk/post.lua', import.meta.url), 'utf8')
  const m = /wrk\.body\s*=\s*'([^']*)'/.exec(lua)
  t.ok(m, 'post.lua sets wrk.body')
  t.equal(m?.[1], kPredictBody)
  t.match(lua, /wrk\.method\s*=\s*"POST"/)
  t.match(lua, /Content-Type"\]\s*=\s*"application\/json"/)
})

t.test('wrk output is parsed with its units', async (t) => {
  const raw = `Running 10s test @ http://127.0.0.1:8000/predict
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.62ms    3.10ms  1.04s    81.82%
    Req/Sec     9.77k     1.20k   11.73k    73.00%
  Latency Distribution
     50%  612.00us
     75%    7.55ms
     90%    9.77ms
     99%   19.72ms
  97232 requests in 10.01s, 27.60MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:   9714.52
Transfer/sec:      2.76MB
`
  const r = parseWrkOutput(raw)
  t.equal(r.requests, 97232)
  t.equal(r.seconds, 10.01)
  t.equal(r.requestsPerSec, 9714.52)
  t.same(r.latencyUs, { p50: 612, p75: 7550, p90: 9770, p99: 19720, mean: 6620, max: 1_040_000 })
  t.equal(r.non2xx3xx, 5)
  t.same(r.socketErrors, { connect: 0, read: 2, write: 0, timeout: 3 })
})
