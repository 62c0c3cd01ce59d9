/**
 * The kline download script, against a loopback server that serves zips built here. The machine
 * running the tests has no internet, and the test must not depend on Binance anyway.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync } from 'node:zlib'
import { strToU8, zipSync } from 'fflate'
import {
  DownloadError,
  candleProblem,
  candlesToCsv,
  downloadFunding,
  downloadKlines,
  fetchBytes,
  finishedDaysOfMonth,
  fundingUrl,
  klinesUrl,
  mergeByTime,
  monthRange,
  parseCli,
  parseSpan,
  parseFundingCsv,
  parseKlineCsv,
  summariseCandles,
  toMilliseconds,
} from '../../training/download-klines.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = join(ROOT, 'training/download-klines.ts')

// ---------------------------------------------------------------------------------------------
// Fixture server
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number
  body: Uint8Array | string
}

/** path -> replies; a route with several replies answers them in turn, then repeats the last. */
const routes = new Map<string, Reply[]>()
const requests: string[] = []
const hanging = new Set<http.ServerResponse>()

const server = http.createServer((req, res) => {
  const path = req.url ?? ''
  requests.push(path)
  if (path === '/hang') {
    hanging.add(res) // never answered: exercises the client timeout
    return
  }
  const replies = routes.get(path)
  const reply = replies && replies.length > 1 ? replies.shift()! : replies?.[0]
  res.statusCode = reply?.status ?? 404
  res.end(reply?.body ?? 'not found')
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const BASE = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

t.teardown(() => {
  for (const res of hanging) res.destroy()
  server.closeAllConnections() // fetch keeps connections alive; close() alone would wait for them
  server.close()
})

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

/** Serve `csv` as a Binance zip at `url`, with a `.CHECKSUM` (wrong on purpose if asked). */
function serveZip(url: string, csv: string, opts: { badChecksum?: boolean; noChecksum?: boolean } = {}): void {
  const path = new URL(url).pathname
  const fileName = path.split('/').pop()!
  const zip = zipSync({ [fileName.replace(/\.zip$/, '.csv')]: strToU8(csv) })
  routes.set(path, [{ status: 200, body: zip }])
  if (opts.noChecksum) return
  const digest = opts.badChecksum ? sha256(strToU8('something else')) : sha256(zip)
  routes.set(`${path}.CHECKSUM`, [{ status: 200, body: `${digest}  ${fileName}\n` }])
}

const pathOf = (url: string): string => new URL(url).pathname

const gunzipText = async (path: string): Promise<string> => gunzipSync(await readFile(path)).toString('utf8')

/** Collects log lines instead of writing to stderr. */
function logSink(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = []
  return { lines, log: (line) => lines.push(line) }
}

/** Run the CLI as users do (tsx loader, real argv), bounded by a timeout. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', SCRIPT, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

// ---------------------------------------------------------------------------------------------
// Fixtures. Timestamps: 2024-12-31 23:58 = 1735689480000, 2025-01-01 00:00 = 1735689600000,
// 2025-02-01 00:00 = 1738368000000, 2025-05-01 00:00 = 1746057600000.
// ---------------------------------------------------------------------------------------------

// Spot, before 2025: milliseconds, no header. Out of order, plus one row whose low is above open.
const SPOT_2024_12 = [
  '1735689540000,701.10000000,702.00000000,700.50000000,701.90000000,12.34500000,1735689599999,8650.1,40,6.1,4300.2,0',
  '1735689480000,700.00000000,701.20000000,699.90000000,701.10000000,10.00000000,1735689539999,7000.0,35,5.0,3500.0,0',
  '1735689420000,700.00000000,701.00000000,700.50000000,700.80000000,1.00000000,1735689479999,700.0,3,0.5,350.0,0',
].join('\n')

// Spot, 2025 on: microseconds (16 digits), no header. 00:02 is absent: one gap inside the month.
const SPOT_2025_01 = [
  '1735689600000000,701.90000000,703.00000000,701.50000000,702.00000000,3.00000000,1735689659999999,2106.0,20,1.5,1053.0,0',
  '1735689660000000,702.00000000,702.50000000,701.00000000,701.25000000,0.00000000,1735689719999999,0,0,0,0,0',
  '1735689780000000,701.25000000,701.25000000,701.25000000,701.25000000,0.00010000,1735689839999999,0.07,1,0,0,0',
].join('\n')

// Daily file for 2025-02-01 (the monthly 2025-02 is "not published"); the row is repeated.
const SPOT_2025_02_01 = [
  '1738368000000000,690.00000000,691.00000000,689.00000000,690.50000000,5.50000000,1738368059999999,3800.0,30,2.0,1380.0,0',
  '1738368000000000,690.00000000,691.00000000,689.00000000,690.50000000,5.50000000,1738368059999999,3800.0,30,2.0,1380.0,0',
].join('\n')

const SPOT_EXPECTED = [
  'open_time_ms,open,high,low,close,volume',
  '1735689480000,700,701.2,699.9,701.1,10',
  '1735689540000,701.1,702,700.5,701.9,12.345',
  '1735689600000,701.9,703,701.5,702,3',
  '1735689660000,702,702.5,701,701.25,0',
  '1735689780000,701.25,701.25,701.25,701.25,0.0001',
  '1738368000000,690,691,689,690.5,5.5',
  '',
].join('\n')

// USD-M futures: header row, milliseconds.
const UM_2025_05 = [
  'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore',
  '1746057660000,600.150,600.300,599.900,600.000,812.33,1746057719999,487436.5,310,400.1,240060.0,0',
  '1746057600000,600.000,600.200,599.800,600.150,1024.50,1746057659999,614700.0,420,500.0,300000.0,0',
].join('\n')

const UM_EXPECTED = [
  'open_time_ms,open,high,low,close,volume',
  '1746057600000,600,600.2,599.8,600.15,1024.5',
  '1746057660000,600.15,600.3,599.9,600,812.33',
  '',
].join('\n')

const FUNDING_2025_05 = [
  'calc_time,funding_interval_hours,last_funding_rate',
  '1746057600000,8,0.00010000',
  '1746086400013,8,-0.00002500',
  '1746115200000,8,0.00000000',
].join('\n')

const FUNDING_EXPECTED = [
  'funding_time_ms,funding_rate',
  '1746057600000,0.0001',
  '1746086400013,-0.000025',
  '1746115200000,0',
  '',
].join('\n')

const spotMonthly = (symbol: string, month: string): string => klinesUrl(BASE, 'spot', symbol, 'monthly', month)
const spotDaily = (symbol: string, day: string): string => klinesUrl(BASE, 'spot', symbol, 'daily', day)

serveZip(spotMonthly('BNBUSDT', '2024-12'), SPOT_2024_12)
serveZip(spotMonthly('BNBUSDT', '2025-01'), SPOT_2025_01)
// 2025-02 monthly: absent (404). Daily: the 1st is there, the 2nd is missing, the 3rd is "today".
serveZip(spotDaily('BNBUSDT', '2025-02-01'), SPOT_2025_02_01)
serveZip(spotDaily('BNBUSDT', '2025-02-03'), SPOT_2025_02_01) // must never be requested
serveZip(klinesUrl(BASE, 'um', 'BNBUSDT', 'monthly', '2025-05'), UM_2025_05)
serveZip(fundingUrl(BASE, 'BNBUSDT', '2025-05'), FUNDING_2025_05)
serveZip(spotMonthly('BTCUSDT', '2024-12'), SPOT_2024_12, { badChecksum: true })
serveZip(spotMonthly('ETHUSDT', '2024-12'), SPOT_2024_12, { noChecksum: true })

// ---------------------------------------------------------------------------------------------
// Pure functions
// ---------------------------------------------------------------------------------------------

t.test('URLs follow the data.binance.vision layout', async (t) => {
  const base = 'https://data.binance.vision/'
  t.equal(
    klinesUrl(base, 'spot', 'BNBUSDT', 'monthly', '2026-03'),
    'https://data.binance.vision/data/spot/monthly/klines/BNBUSDT/1m/BNBUSDT-1m-2026-03.zip',
  )
  t.equal(
    klinesUrl(base, 'spot', 'BNBUSDT', 'daily', '2026-04-05'),
    'https://data.binance.vision/data/spot/daily/klines/BNBUSDT/1m/BNBUSDT-1m-2026-04-05.zip',
  )
  t.equal(
    klinesUrl(base, 'um', 'BTCUSDT', 'monthly', '2025-06'),
    'https://data.binance.vision/data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip',
  )
  t.equal(
    klinesUrl(base, 'um', 'BTCUSDT', 'daily', '2025-06-01'),
    'https://data.binance.vision/data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06-01.zip',
  )
  t.equal(
    fundingUrl(base, 'BNBUSDT', '2025-06'),
    'https://data.binance.vision/data/futures/um/monthly/fundingRate/BNBUSDT/BNBUSDT-fundingRate-2025-06.zip',
  )
})

t.test('month ranges are inclusive and cross years', async (t) => {
  t.same(monthRange('2025-11', '2026-02'), ['2025-11', '2025-12', '2026-01', '2026-02'])
  t.same(monthRange('2026-03', '2026-03'), ['2026-03'])
  t.throws(() => monthRange('2026-04', '2026-03'), /after/)
  t.throws(() => monthRange('2026-13', '2026-13'), /YYYY-MM/)
  t.throws(() => monthRange('2026-3', '2026-04'), /YYYY-MM/)
})

t.test('spans: months or days, both inclusive, UTC', async (t) => {
  const day = (iso: string): number => Date.parse(iso)
  t.match(parseSpan('2021-04-02', '2021-07-10'), {
    startMs: day('2021-04-02T00:00:00Z'),
    endMs: day('2021-07-11T00:00:00Z'),
    months: ['2021-04', '2021-05', '2021-06', '2021-07'],
  })
  t.match(parseSpan('2026-03', '2026-04-22'), { startMs: day('2026-03-01T00:00:00Z'), endMs: day('2026-04-23T00:00:00Z'), months: ['2026-03', '2026-04'] })
  t.match(parseSpan('2024-02', '2024-02'), { endMs: day('2024-03-01T00:00:00Z') }, 'a month ends where the next begins')
  t.match(parseSpan('2024-12-31', '2024-12-31'), { endMs: day('2025-01-01T00:00:00Z'), months: ['2024-12'] })
  t.throws(() => parseSpan('2024-02-30', '2024-03'), /not a day/)
  t.throws(() => parseSpan('2024-03-02', '2024-03-01'), /after/)
})

t.test('daily fallback only asks for days that are over', async (t) => {
  t.equal(finishedDaysOfMonth('2024-02', new Date('2030-01-01T00:00Z')).length, 29, 'leap February')
  t.equal(finishedDaysOfMonth('2025-02', new Date('2030-01-01T00:00Z')).length, 28)
  t.same(finishedDaysOfMonth('2025-02', new Date('2025-02-03T12:00Z')), ['2025-02-01', '2025-02-02'])
  t.same(finishedDaysOfMonth('2025-02', new Date('2025-02-03T00:00Z')), ['2025-02-01', '2025-02-02'])
  t.same(finishedDaysOfMonth('2025-03', new Date('2025-02-03T12:00Z')), [], 'a future month has none')
})

t.test('timestamps: microseconds become milliseconds', async (t) => {
  t.equal(toMilliseconds(1735689600000000), 1735689600000)
  t.equal(toMilliseconds(1735689600000), 1735689600000)
  // Not a whole millisecond: left fractional so validation rejects it rather than moving it.
  t.equal(parseKlineCsv('1735689600000123,1,1,1,1,1').bad[0]?.reason, 'open_time is not a whole minute')
})

t.test('row validation', async (t) => {
  const ok = { openTimeMs: 1735689600000, open: 2, high: 3, low: 1, close: 2.5, volume: 0 }
  t.equal(candleProblem(ok), null)
  t.equal(candleProblem({ ...ok, open: 3, high: 3, low: 3, close: 3 }), null, 'flat candle is fine')
  t.match(candleProblem({ ...ok, openTimeMs: ok.openTimeMs + 1000 }), /whole minute/)
  t.match(candleProblem({ ...ok, low: 0, open: 0 }), /low <= 0/)
  t.match(candleProblem({ ...ok, volume: -1 }), /volume/)
  t.match(candleProblem({ ...ok, low: 2.1 }), /low <= min/, 'low above open')
  t.match(candleProblem({ ...ok, high: 2.4 }), /<= high/, 'close above high')
  t.match(candleProblem({ ...ok, close: NaN }), /finite/)
  t.match(candleProblem({ ...ok, high: Infinity }), /finite/)

  const parsed = parseKlineCsv(
    [
      'open_time,open,high,low,close,volume', // header: skipped, not counted as bad
      '1735689600000,2,3,1,2.5,7',
      '1735689660000,2,3,,2.5,7', // empty low must not read as 0
      '1735689720000,2,3,1',
      'garbage',
      '',
    ].join('\r\n'),
  )
  t.equal(parsed.rows.length, 1)
  t.same(parsed.bad.map((b) => b.line), [3, 4, 5])
})

t.test('funding rows', async (t) => {
  const parsed = parseFundingCsv(`${FUNDING_2025_05}\nabc,8,0.1\n1746115200000,8,x\n1746115200000,8`)
  t.equal(parsed.rows.length, 3)
  t.equal(parsed.bad.length, 3)
})

t.test('merge sorts, keeps the first of repeated timestamps and counts them', async (t) => {
  const merged = mergeByTime(
    [
      { time: 3, v: 'a' },
      { time: 1, v: 'b' },
      { time: 3, v: 'c' },
      { time: 2, v: 'd' },
    ],
    (r) => r.time,
  )
  t.same(merged.rows.map((r) => r.v), ['b', 'd', 'a'])
  t.equal(merged.duplicates, 1)
})

t.test('output numbers are the shortest round-trip decimal', async (t) => {
  const csv = candlesToCsv(parseKlineCsv('1735689600000,337.00000000,337.5,336.10,337.0,0.00000100').rows)
  t.equal(csv, 'open_time_ms,open,high,low,close,volume\n1735689600000,337,337.5,336.1,337,0.000001\n')
})

t.test('summary counts gaps', async (t) => {
  const rows = parseKlineCsv(SPOT_2025_01).rows
  t.same(summariseCandles(rows), { rows: 3, firstMs: 1735689600000, lastMs: 1735689780000, gaps: 1 })
  t.same(summariseCandles([]), { rows: 0, firstMs: null, lastMs: null, gaps: 0 })
})

// ---------------------------------------------------------------------------------------------
// Against the loopback server
// ---------------------------------------------------------------------------------------------

const quick = { timeoutMs: 5_000, retries: 2, retryDelayMs: 10 }

t.test('spot: ms and µs months, 404 month falls back to daily files, bad rows and repeats dropped', async (t) => {
  const sink = logSink()
  requests.length = 0
  const result = await downloadKlines({
    symbol: 'BNBUSDT',
    market: 'spot',
    from: '2024-12',
    to: '2025-02',
    baseUrl: BASE,
    now: new Date('2025-02-03T12:00:00Z'),
    log: sink.log,
    fetch: quick,
  })
  t.equal(candlesToCsv(result.rows), SPOT_EXPECTED)
  t.equal(result.badRows, 1, 'the row with low above open')
  t.equal(result.duplicates, 1, 'the repeated daily row')
  t.equal(result.files, 3, 'two monthly files and one daily file')
  t.same(result.missing, [spotDaily('BNBUSDT', '2025-02-02')], 'the missing day is reported, not fatal')
  t.equal(summariseCandles(result.rows).gaps, 2, 'inside January and between January and February')

  t.ok(requests.includes(pathOf(spotMonthly('BNBUSDT', '2025-02'))), 'asked for the month first')
  t.ok(requests.includes(pathOf(spotDaily('BNBUSDT', '2025-02-01'))))
  t.notOk(requests.includes(pathOf(spotDaily('BNBUSDT', '2025-02-03'))), 'today is not asked for')
  t.ok(requests.includes(`${pathOf(spotMonthly('BNBUSDT', '2025-01'))}.CHECKSUM`), 'checksums are fetched')

  const log = sink.lines.join('\n')
  t.match(log, /1 bad row\(s\) skipped in .*BNBUSDT-1m-2024-12\.zip/)
  t.match(log, /low <= min/)
  t.match(log, /missing \(404\), skipped: .*BNBUSDT-1m-2025-02-02\.zip/)
})

t.test('futures month with a header, and funding', async (t) => {
  const common = { symbol: 'BNBUSDT', market: 'um' as const, from: '2025-05', to: '2025-05', baseUrl: BASE, fetch: quick }
  const klines = await downloadKlines({ ...common, log: logSink().log })
  t.equal(candlesToCsv(klines.rows), UM_EXPECTED)
  t.equal(klines.badRows, 0, 'the header is not a bad row')

  const funding = await downloadFunding({ ...common, log: logSink().log })
  t.same(funding.rows, [
    { fundingTimeMs: 1746057600000, fundingRate: 0.0001 },
    { fundingTimeMs: 1746086400013, fundingRate: -0.000025 },
    { fundingTimeMs: 1746115200000, fundingRate: 0 },
  ])
  t.same(funding.missing, [])
})

t.test('a checksum mismatch is fatal and names the URL', async (t) => {
  const url = spotMonthly('BTCUSDT', '2024-12')
  const options = { symbol: 'BTCUSDT', market: 'spot' as const, from: '2024-12', to: '2024-12', baseUrl: BASE }
  await t.rejects(downloadKlines({ ...options, log: logSink().log, fetch: quick }), {
    name: 'DownloadError',
    message: new RegExp(`checksum mismatch for ${url.replace(/[.]/g, '\\.')}`),
  })
  const unchecked = await downloadKlines({ ...options, verifyChecksums: false, log: logSink().log, fetch: quick })
  t.equal(unchecked.rows.length, 2, '--no-checksum skips verification')
})

t.test('a missing .CHECKSUM file is fatal unless checks are off', async (t) => {
  const options = { symbol: 'ETHUSDT', market: 'spot' as const, from: '2024-12', to: '2024-12', baseUrl: BASE }
  await t.rejects(downloadKlines({ ...options, log: logSink().log, fetch: quick }), {
    message: /no checksum file for .*ETHUSDT-1m-2024-12\.zip.*--no-checksum/,
  })
  const unchecked = await downloadKlines({ ...options, verifyChecksums: false, log: logSink().log, fetch: quick })
  t.equal(unchecked.rows.length, 2)
})

t.test('HTTP: 5xx and timeouts are retried a bounded number of times, 4xx other than 404 are fatal', async (t) => {
  routes.set('/flaky', [
    { status: 503, body: 'busy' },
    { status: 200, body: 'ok' },
  ])
  requests.length = 0
  const body = await fetchBytes(`${BASE}/flaky`, quick)
  t.equal(Buffer.from(body!).toString(), 'ok', 'succeeds after one 503')
  t.equal(requests.filter((r) => r === '/flaky').length, 2)

  routes.set('/broken', [{ status: 500, body: 'no' }])
  requests.length = 0
  await t.rejects(fetchBytes(`${BASE}/broken`, quick), {
    message: `giving up on ${BASE}/broken after 3 attempts: HTTP 500 Internal Server Error`,
  })
  t.equal(requests.length, 3, 'one try plus two retries')

  routes.set('/forbidden', [{ status: 403, body: 'no' }])
  requests.length = 0
  await t.rejects(fetchBytes(`${BASE}/forbidden`, quick), new DownloadError(`HTTP 403 Forbidden for ${BASE}/forbidden`))
  t.equal(requests.length, 1, 'not retried')

  t.equal(await fetchBytes(`${BASE}/nothing-here`, quick), null, '404 is "missing", not an error')

  await t.rejects(fetchBytes(`${BASE}/hang`, { timeoutMs: 200, retries: 1, retryDelayMs: 10 }), {
    message: new RegExp(`giving up on ${BASE}/hang after 2 attempts`),
  })
})

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

t.test('CLI arguments', async (t) => {
  const config = parseCli(['--symbol', 'bnbusdt,BTCUSDT', '--symbol', 'ethusdt', '--from', '2026-03'])
  t.same(config, {
    symbols: ['BNBUSDT', 'BTCUSDT', 'ETHUSDT'],
    market: 'spot',
    from: '2026-03',
    to: '2026-03',
    out: 'data/',
    replace: false,
    baseUrl: 'https://data.binance.vision',
    funding: false,
    verifyChecksums: true,
  })
  t.equal(parseCli(['--help']), 'help')
  t.throws(() => parseCli(['--from', '2026-03']), /--symbol is required/)
  t.throws(() => parseCli(['--symbol', 'BNB/USDT', '--from', '2026-03']), /bad symbol/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2026-03', '--market', 'coin']), /spot or um/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2026-03', '--funding']), /--market um/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2026-04', '--to', '2026-03']), /after/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2026-03', '--bogus']))
  t.match(parseCli(['--symbol', 'X', '--from', '2026-03', '--no-checksum']), { verifyChecksums: false })
  t.match(parseCli(['--symbol', 'X', '--from', '2021-04-02', '--to', '2021-07-10', '--replace']), { from: '2021-04-02', to: '2021-07-10', replace: true })
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2021-02-30']), /not a day/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2021-04-02', '--to', '2021-04-01']), /after/)
  t.throws(() => parseCli(['--symbol', 'X', '--from', '2021-4-2']), /YYYY-MM or YYYY-MM-DD/)
})

t.test('CLI end to end: futures klines and funding into the output directory', async (t) => {
  const out = t.testdir()
  const args = ['--symbol', 'bnbusdt', '--market', 'um', '--from', '2025-05', '--to', '2025-05', '--funding']
  const run = await runCli([...args, '--out', out, '--base-url', BASE])
  t.equal(run.code, 0, 'exits 0', { stderr: run.stderr })
  t.same((await readdir(out)).sort(), ['BNBUSDT-PERP-1m.csv.gz', 'BNBUSDT-PERP-funding-8h.csv.gz'])
  t.equal(await gunzipText(join(out, 'BNBUSDT-PERP-1m.csv.gz')), UM_EXPECTED)
  t.equal(await gunzipText(join(out, 'BNBUSDT-PERP-funding-8h.csv.gz')), FUNDING_EXPECTED)
  t.match(run.stdout, /rows 2, first candle 2025-05-01 00:00 UTC, last candle 2025-05-01 00:01 UTC, gaps 0/)
  t.match(run.stdout, /BNBUSDT funding -> .*\n {2}rows 3/)
})

t.test('CLI: spot output, checksum failure exit code, usage errors', async (t) => {
  const out = t.testdir()
  // All of 2024-12 and 2025-01 exist, so the machine's date does not matter here.
  const ok = await runCli(['--symbol', 'BNBUSDT', '--from', '2024-12', '--to', '2025-01', '--out', out, '--base-url', BASE])
  t.equal(ok.code, 0, 'exits 0', { stderr: ok.stderr })
  t.equal(await gunzipText(join(out, 'BNBUSDT-1m.csv.gz')), SPOT_EXPECTED.split('\n').slice(0, 6).join('\n') + '\n')
  t.match(ok.stdout, /rows 5, .*gaps 1\n.*span 2024-12-01 00:00 .. 2025-01-31 23:59 UTC.*\n.*bad rows 1/)

  const bad = await runCli(['--symbol', 'BTCUSDT', '--from', '2024-12', '--out', out, '--base-url', BASE])
  t.equal(bad.code, 1)
  t.match(bad.stderr, `checksum mismatch for ${spotMonthly('BTCUSDT', '2024-12')}`)
  t.same(await readdir(out), ['BNBUSDT-1m.csv.gz'], 'nothing written for the failed symbol')

  const unknown = await runCli(['--symbol', 'NOPEUSDT', '--from', '2024-12', '--out', out, '--base-url', BASE])
  t.equal(unknown.code, 1, 'all-404 symbol is an error')
  t.match(unknown.stdout, /NOPEUSDT spot: no candles found, nothing written/)

  const usage = await runCli(['--symbol', 'BNBUSDT'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /--from YYYY-MM or YYYY-MM-DD is required/)

  const help = await runCli(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--base-url URL/)
})

t.test('a span of days is cut out of the monthly files; a missing month falls back only to its days in the span', async (t) => {
  const common = { symbol: 'BNBUSDT', market: 'spot' as const, baseUrl: BASE, log: logSink().log }
  const lastDay = await downloadKlines({ ...common, from: '2024-12-31', to: '2024-12-31' })
  t.same(lastDay.rows.map((c) => c.openTimeMs), [1735689480000, 1735689540000])
  const firstDay = await downloadKlines({ ...common, from: '2025-01-01', to: '2025-01-01' })
  t.same(firstDay.rows.map((c) => c.openTimeMs), [1735689600000, 1735689660000, 1735689780000])
  const none = await downloadKlines({ ...common, from: '2024-12-01', to: '2024-12-30' })
  t.equal(none.rows.length, 0, 'the month was fetched but none of its rows lie in the span')

  const before = requests.length
  const february = await downloadKlines({ ...common, from: '2025-02-01', to: '2025-02-01', now: new Date('2025-03-15T00:00Z') })
  t.same(february.rows.map((c) => c.openTimeMs), [1738368000000])
  const asked = requests.slice(before).filter((p) => p.includes('/daily/'))
  t.same(asked.filter((p) => p.endsWith('.zip')), [pathOf(spotDaily('BNBUSDT', '2025-02-01'))], 'no daily file outside the span is requested')
})

t.test('CLI: spans merge into one file (the shipped model has two), a re-run replaces its span, --replace keeps only it', async (t) => {
  const out = t.testdir()
  const file = join(out, 'BNBUSDT-1m.csv.gz')
  const base = ['--symbol', 'BNBUSDT', '--out', out, '--base-url', BASE]
  const expected = SPOT_EXPECTED.split('\n')
  const lines = (...rows: number[]): string => [expected[0], ...rows.map((i) => expected[i]), ''].join('\n')

  const first = await runCli([...base, '--from', '2025-01-01', '--to', '2025-01-01'])
  t.equal(first.code, 0, 'first span', { stderr: first.stderr })
  t.equal(await gunzipText(file), lines(3, 4, 5))
  t.match(first.stdout, /span 2025-01-01 00:00 \.\. 2025-01-01 23:59 UTC: 3 rows downloaded, 0 kept/)

  const second = await runCli([...base, '--from', '2024-12-31', '--to', '2024-12-31'])
  t.equal(second.code, 0, 'second span', { stderr: second.stderr })
  t.equal(await gunzipText(file), lines(1, 2, 3, 4, 5), 'both spans, in time order')
  t.match(second.stdout, /rows 5, first candle 2024-12-31 23:58 UTC, last candle 2025-01-01 00:03 UTC/)
  t.match(second.stdout, /2 rows downloaded, 3 kept from the existing file outside the span/)

  const again = await runCli([...base, '--from', '2024-12', '--to', '2025-01'])
  t.equal(again.code, 0, 'a span covering both', { stderr: again.stderr })
  t.equal(await gunzipText(file), lines(1, 2, 3, 4, 5), 'no duplicates after re-downloading a span')
  t.match(again.stdout, /5 rows downloaded, 0 kept/)

  const only = await runCli([...base, '--from', '2024-12-31', '--replace'])
  t.equal(only.code, 0, '--replace', { stderr: only.stderr })
  t.equal(await gunzipText(file), lines(1, 2), '--replace writes only the span')
})

t.test('CLI: funding spans merge too; an unreadable existing file stops the run untouched', async (t) => {
  const out = t.testdir({ 'BNBUSDT-PERP-funding-8h.csv.gz': gzipSync('funding_time_ms,funding_rate\n1700000000000,0.0003\n') })
  const args = ['--symbol', 'BNBUSDT', '--market', 'um', '--from', '2025-05', '--funding', '--out', out, '--base-url', BASE]
  const run = await runCli(args)
  t.equal(run.code, 0, { stderr: run.stderr })
  t.equal(await gunzipText(join(out, 'BNBUSDT-PERP-funding-8h.csv.gz')),
    FUNDING_EXPECTED.replace('funding_rate\n', 'funding_rate\n1700000000000,0.0003\n'))

  const broken = gzipSync('open_time_ms,open,high,low,close,volume\n1700000000000,1,2,3,4\n')
  const bad = t.testdir({ 'BNBUSDT-PERP-1m.csv.gz': broken })
  const refused = await runCli(['--symbol', 'BNBUSDT', '--market', 'um', '--from', '2025-05', '--out', bad, '--base-url', BASE])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /the existing .*BNBUSDT-PERP-1m\.csv\.gz has 1 unreadable row\(s\).*--replace/)
  t.same(await readFile(join(bad, 'BNBUSDT-PERP-1m.csv.gz')), broken, 'left as it was')
})
