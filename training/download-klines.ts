/**
 * Download Binance's public 1-minute klines (and optionally USD-M funding rates) from the
 * data.binance.vision dump and write them in the same format as the shared training data:
 * gzip'd CSV, `open_time_ms,open,high,low,close,volume`, sorted, de-duplicated, validated.
 *
 *   npm run download -- --symbol BNBUSDT,BTCUSDT --market spot --from 2026-03 --to 2026-04
 *   npm run download -- --symbol BNBUSDT,BTCUSDT --from 2021-04-02 --to 2021-07-10
 *   npm run download -- --symbol BNBUSDT --market um --from 2025-05 --funding
 *
 * A span is `--from`..`--to`, each a month (`YYYY-MM`) or a day (`YYYY-MM-DD`), both inclusive,
 * UTC. The span's rows are merged into the output file: rows of the file outside the span are
 * kept, rows inside it are replaced by the download. So several runs build one file of several
 * spans (the shipped model's 2021 and 2026 spans, training/README.md), a re-run of a span
 * corrects it without duplicates, and `--replace` writes only the span.
 *
 * Monthly files are used where they exist (and trimmed to the span). The current month is not published as a monthly file
 * yet (it 404s), so that month falls back to the daily files of the days that are already over.
 * A missing file is reported and skipped; any other HTTP error, a checksum mismatch or an
 * unreadable zip stops the run, because silently training on partial or corrupt data is worse.
 *
 * Everything below is exported so the tests can drive it against a loopback server; the CLI part
 * at the bottom only runs when this file is executed directly.
 */

import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { realpathSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { gunzipSync, gzipSync } from 'node:zlib'
import { unzipSync } from 'fflate'

export const DEFAULT_BASE_URL = 'https://data.binance.vision'

export type Market = 'spot' | 'um'
type Period = 'monthly' | 'daily'

export interface Candle {
  openTimeMs: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}

export interface FundingRate {
  fundingTimeMs: number
  fundingRate: number
}

/** A row that failed validation: kept only to be counted and shown, never written. */
export interface BadRow {
  line: number
  text: string
  reason: string
}

export interface Parsed<T> {
  rows: T[]
  bad: BadRow[]
}

/** A failure that should stop the run. The message always names the URL involved. */
export class DownloadError extends Error {
  override name = 'DownloadError'
}

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000

// ---------------------------------------------------------------------------------------------
// Months, days and URLs
// ---------------------------------------------------------------------------------------------

const MONTH_RE = /^(\d{4})-(\d{2})$/

/** Parse `YYYY-MM` into year and month (1-12); throws on anything else. */
export function parseMonth(text: string): { year: number; month: number } {
  const m = MONTH_RE.exec(text)
  const year = m ? Number(m[1]) : NaN
  const month = m ? Number(m[2]) : NaN
  if (!m || month < 1 || month > 12) throw new Error(`not a month (want YYYY-MM): ${JSON.stringify(text)}`)
  return { year, month }
}

const pad2 = (n: number): string => String(n).padStart(2, '0')

/** Every month from `from` to `to`, both inclusive, as `YYYY-MM`. */
export function monthRange(from: string, to: string): string[] {
  const start = parseMonth(from)
  const end = parseMonth(to)
  const months: string[] = []
  // Count in "months since year 0" so the year rollover needs no special case.
  for (let i = start.year * 12 + start.month - 1; i <= end.year * 12 + end.month - 1; i++) {
    months.push(`${Math.floor(i / 12)}-${pad2((i % 12) + 1)}`)
  }
  if (months.length === 0) throw new Error(`--from ${from} is after --to ${to}`)
  return months
}

const DAY_RE = /^(\d{4}-\d{2})-(\d{2})$/

/**
 * A download span, UTC: `[startMs, endMs)`, and the months it touches. `from` and `to` are each
 * `YYYY-MM` (the whole month) or `YYYY-MM-DD` (the whole day), both inclusive.
 */
export interface Span {
  from: string
  to: string
  startMs: number
  endMs: number
  months: string[]
}

/** Start and end (exclusive) of a `YYYY-MM` or `YYYY-MM-DD`, UTC; throws on anything else. */
function periodBounds(text: string): { month: string; startMs: number; endMs: number } {
  const day = DAY_RE.exec(text)
  if (day) {
    const { year, month } = parseMonth(day[1]!)
    const d = Number(day[2])
    const startMs = Date.UTC(year, month - 1, d)
    if (d < 1 || new Date(startMs).getUTCMonth() !== month - 1) throw new Error(`not a day: ${JSON.stringify(text)}`)
    return { month: day[1]!, startMs, endMs: startMs + DAY_MS }
  }
  if (!MONTH_RE.test(text)) throw new Error(`not a month or a day (want YYYY-MM or YYYY-MM-DD): ${JSON.stringify(text)}`)
  const { year, month } = parseMonth(text)
  return { month: text, startMs: Date.UTC(year, month - 1, 1), endMs: Date.UTC(year, month, 1) }
}

/** The span from `from` to `to`, both inclusive; throws on a bad date or `from` after `to`. */
export function parseSpan(from: string, to: string): Span {
  const start = periodBounds(from)
  const end = periodBounds(to)
  if (end.endMs <= start.startMs) throw new Error(`--from ${from} is after --to ${to}`)
  return { from, to, startMs: start.startMs, endMs: end.endMs, months: monthRange(start.month, end.month) }
}

/** `YYYY-MM-DD HH:MM` .. `YYYY-MM-DD HH:MM` (UTC, end inclusive) for logs and summaries. */
export function describeSpan(span: Span): string {
  return `${formatUtcMinute(span.startMs)} .. ${formatUtcMinute(span.endMs - MINUTE_MS)} UTC`
}

/**
 * The days of `month` (`YYYY-MM-DD`) whose daily file can exist at `now`: Binance publishes a day
 * only after it has ended (UTC), so today and later days are left out rather than reported missing.
 */
export function finishedDaysOfMonth(month: string, now: Date): string[] {
  const { year, month: mm } = parseMonth(month)
  const days: string[] = []
  for (let d = 1; ; d++) {
    const start = Date.UTC(year, mm - 1, d)
    if (new Date(start).getUTCMonth() !== mm - 1) break // ran past the month's last day
    if (start + DAY_MS > now.getTime()) break
    days.push(`${month}-${pad2(d)}`)
  }
  return days
}

function marketPath(market: Market): string {
  return market === 'spot' ? 'data/spot' : 'data/futures/um'
}

/** URL of a kline zip; `date` is `YYYY-MM` for monthly and `YYYY-MM-DD` for daily files. */
export function klinesUrl(baseUrl: string, market: Market, symbol: string, period: Period, date: string): string {
  return `${trimSlash(baseUrl)}/${marketPath(market)}/${period}/klines/${symbol}/1m/${symbol}-1m-${date}.zip`
}

/** URL of a monthly USD-M funding-rate zip (Binance publishes no daily funding files). */
export function fundingUrl(baseUrl: string, symbol: string, month: string): string {
  return `${trimSlash(baseUrl)}/data/futures/um/monthly/fundingRate/${symbol}/${symbol}-fundingRate-${month}.zip`
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/** Output file names, matching the shared data directory. */
export function klinesFileName(symbol: string, market: Market): string {
  return market === 'spot' ? `${symbol}-1m.csv.gz` : `${symbol}-PERP-1m.csv.gz`
}

export function fundingFileName(symbol: string): string {
  return `${symbol}-PERP-funding-8h.csv.gz`
}

// ---------------------------------------------------------------------------------------------
// CSV parsing and validation
// ---------------------------------------------------------------------------------------------

/**
 * Binance spot files switched to microsecond timestamps on 2025-01-01 (16 digits instead of 13).
 * A millisecond timestamp would not reach 1e14 before the year 5138, so the size tells them apart.
 * No rounding: a microsecond value that is not a whole millisecond stays fractional and fails the
 * "multiple of 60000" check instead of being silently moved.
 */
export function toMilliseconds(timestamp: number): number {
  return timestamp >= 1e14 ? timestamp / 1000 : timestamp
}

/** Why a candle is unusable, or null when it is fine. */
export function candleProblem(c: Candle): string | null {
  const values = [c.openTimeMs, c.open, c.high, c.low, c.close, c.volume]
  if (!values.every(Number.isFinite)) return 'non-numeric or non-finite field'
  if (c.openTimeMs <= 0 || c.openTimeMs % MINUTE_MS !== 0) return 'open_time is not a whole minute'
  if (!(c.low > 0)) return 'low <= 0'
  if (c.volume < 0) return 'volume < 0'
  if (!(c.low <= Math.min(c.open, c.close) && Math.max(c.open, c.close) <= c.high)) {
    return 'not low <= min(open,close) <= max(open,close) <= high'
  }
  return null
}

/** Split CSV text into non-empty lines with their 1-based line numbers, minus a header row. */
function dataLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '') return
    // Futures files start with a header (`open_time,...`, `calc_time,...`); spot files do not.
    if (i === 0 && /^[A-Za-z_]/.test(line)) return
    out.push({ line: i + 1, text: line })
  })
  return out
}

/** Field as a number; empty text would otherwise become 0 and pass validation. */
function num(field: string | undefined): number {
  return field === undefined || field.trim() === '' ? NaN : Number(field)
}

/** Parse a Binance kline CSV (spot or futures, ms or µs) into validated candles. */
export function parseKlineCsv(text: string): Parsed<Candle> {
  const rows: Candle[] = []
  const bad: BadRow[] = []
  for (const { line, text: row } of dataLines(text)) {
    const f = row.split(',')
    if (f.length < 6) {
      bad.push({ line, text: row, reason: `expected at least 6 columns, got ${f.length}` })
      continue
    }
    const candle: Candle = {
      openTimeMs: toMilliseconds(num(f[0])),
      open: num(f[1]),
      high: num(f[2]),
      low: num(f[3]),
      close: num(f[4]),
      volume: num(f[5]),
    }
    const problem = candleProblem(candle)
    if (problem) bad.push({ line, text: row, reason: problem })
    else rows.push(candle)
  }
  return { rows, bad }
}

/** Parse a funding CSV (`calc_time,funding_interval_hours,last_funding_rate`). */
export function parseFundingCsv(text: string): Parsed<FundingRate> {
  const rows: FundingRate[] = []
  const bad: BadRow[] = []
  for (const { line, text: row } of dataLines(text)) {
    const f = row.split(',')
    const rate: FundingRate = { fundingTimeMs: toMilliseconds(num(f[0])), fundingRate: num(f[2]) }
    if (f.length < 3) bad.push({ line, text: row, reason: `expected 3 columns, got ${f.length}` })
    else if (!Number.isSafeInteger(rate.fundingTimeMs) || rate.fundingTimeMs <= 0) {
      bad.push({ line, text: row, reason: 'calc_time is not a positive whole millisecond' })
    } else if (!Number.isFinite(rate.fundingRate)) bad.push({ line, text: row, reason: 'funding rate is not a number' })
    else rows.push(rate)
  }
  return { rows, bad }
}

/**
 * Our own funding output (`funding_time_ms,funding_rate`, see fundingToCsv), read back to merge a
 * new span into it; Binance's layout has a third column and is parsed by parseFundingCsv.
 */
export function parseOutputFundingCsv(text: string): Parsed<FundingRate> {
  const rows: FundingRate[] = []
  const bad: BadRow[] = []
  for (const { line, text: row } of dataLines(text)) {
    const f = row.split(',')
    const rate: FundingRate = { fundingTimeMs: num(f[0]), fundingRate: num(f[1]) }
    if (f.length !== 2) bad.push({ line, text: row, reason: `expected 2 columns, got ${f.length}` })
    else if (!Number.isSafeInteger(rate.fundingTimeMs) || rate.fundingTimeMs <= 0) {
      bad.push({ line, text: row, reason: 'funding_time_ms is not a positive whole millisecond' })
    } else if (!Number.isFinite(rate.fundingRate)) bad.push({ line, text: row, reason: 'funding rate is not a number' })
    else rows.push(rate)
  }
  return { rows, bad }
}

// ---------------------------------------------------------------------------------------------
// Merging and output
// ---------------------------------------------------------------------------------------------

/**
 * Sort rows by time and drop repeated timestamps, keeping the first occurrence (so a monthly file
 * wins over a daily one for the same minute). Returns how many rows were dropped.
 */
export function mergeByTime<T>(rows: readonly T[], timeOf: (row: T) => number): { rows: T[]; duplicates: number } {
  const sorted = [...rows].sort((a, b) => timeOf(a) - timeOf(b)) // Array#sort is stable
  const out: T[] = []
  for (const row of sorted) {
    const last = out[out.length - 1]
    if (last === undefined || timeOf(last) !== timeOf(row)) out.push(row)
  }
  return { rows: out, duplicates: sorted.length - out.length }
}

/** Shortest decimal that round-trips the float64, e.g. `337` for "337.00000000". */
const fmt = (n: number): string => String(n)

export function candlesToCsv(candles: readonly Candle[]): string {
  const lines = ['open_time_ms,open,high,low,close,volume']
  for (const c of candles) {
    lines.push(`${c.openTimeMs},${fmt(c.open)},${fmt(c.high)},${fmt(c.low)},${fmt(c.close)},${fmt(c.volume)}`)
  }
  return lines.join('\n') + '\n'
}

export function fundingToCsv(rates: readonly FundingRate[]): string {
  const lines = ['funding_time_ms,funding_rate']
  for (const r of rates) lines.push(`${r.fundingTimeMs},${fmt(r.fundingRate)}`)
  return lines.join('\n') + '\n'
}

/** Write gzip'd text via a temp file and rename, so an interrupted run never leaves a half file. */
export async function writeGzip(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, gzipSync(text))
  await rename(tmp, path)
}

export interface CandleSummary {
  rows: number
  firstMs: number | null
  lastMs: number | null
  /** Steps between consecutive candles that are not exactly one minute. */
  gaps: number
}

export function summariseCandles(candles: readonly Candle[]): CandleSummary {
  let gaps = 0
  for (let i = 1; i < candles.length; i++) {
    if (candles[i]!.openTimeMs - candles[i - 1]!.openTimeMs !== MINUTE_MS) gaps++
  }
  return {
    rows: candles.length,
    firstMs: candles[0]?.openTimeMs ?? null,
    lastMs: candles[candles.length - 1]?.openTimeMs ?? null,
    gaps,
  }
}

/** `2026-03-01 00:00` (UTC) for the summary. */
export function formatUtcMinute(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().slice(0, 16).replace('T', ' ')
}

// ---------------------------------------------------------------------------------------------
// HTTP: fetch with timeout and retries, checksum, unzip
// ---------------------------------------------------------------------------------------------

export interface FetchOptions {
  /** Per-request limit, covering the body as well. A monthly zip is a few MB. */
  timeoutMs?: number
  /** Extra attempts after a network error, timeout or 5xx. 4xx are never retried. */
  retries?: number
  /** First backoff delay; doubles each retry. */
  retryDelayMs?: number
}

const DEFAULT_FETCH: Required<FetchOptions> = { timeoutMs: 60_000, retries: 3, retryDelayMs: 1_000 }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** `fetch failed` alone is useless; the cause says ECONNREFUSED, timeout, etc. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`
}

/**
 * GET `url` and return the body, or null for 404 (the file does not exist). Network errors,
 * timeouts and 5xx are retried a bounded number of times; other statuses fail at once.
 */
export async function fetchBytes(url: string, options: FetchOptions = {}): Promise<Uint8Array | null> {
  const { timeoutMs, retries, retryDelayMs } = { ...DEFAULT_FETCH, ...options }
  let lastProblem = ''
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(retryDelayMs * 2 ** (attempt - 1))
    let res: Response
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      if (res.status === 404) {
        await res.body?.cancel()
        return null
      }
      if (res.ok) return new Uint8Array(await res.arrayBuffer())
    } catch (err) {
      lastProblem = describeError(err)
      continue
    }
    await res.body?.cancel()
    if (res.status < 500) throw new DownloadError(`HTTP ${res.status} ${res.statusText} for ${url}`)
    lastProblem = `HTTP ${res.status} ${res.statusText}`
  }
  throw new DownloadError(`giving up on ${url} after ${retries + 1} attempts: ${lastProblem}`)
}

/** Throw unless `data` hashes to the sha256 in a Binance `.CHECKSUM` file (`<hex>  <name>`). */
export function verifyChecksum(data: Uint8Array, checksumFile: string, url: string): void {
  const expected = checksumFile.trim().split(/\s+/)[0]?.toLowerCase() ?? ''
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new DownloadError(`unreadable checksum file ${url}.CHECKSUM: ${JSON.stringify(checksumFile.slice(0, 100))}`)
  }
  const actual = createHash('sha256').update(data).digest('hex')
  if (actual !== expected) {
    throw new DownloadError(`checksum mismatch for ${url}: expected sha256 ${expected}, got ${actual}`)
  }
}

/** The single CSV inside a Binance zip, as text. */
export function csvFromZip(zip: Uint8Array, url: string): string {
  let entries: Record<string, Uint8Array>
  try {
    entries = unzipSync(zip)
  } catch (err) {
    throw new DownloadError(`cannot unzip ${url}: ${describeError(err)}`)
  }
  const csvs = Object.keys(entries).filter((name) => name.toLowerCase().endsWith('.csv'))
  if (csvs.length !== 1) throw new DownloadError(`expected one CSV in ${url}, found ${csvs.length}`)
  return new TextDecoder().decode(entries[csvs[0]!])
}

export interface SourceOptions {
  verifyChecksums?: boolean
  fetch?: FetchOptions
}

/** Download one zip (verifying its checksum) and return its CSV text, or null if it 404s. */
export async function fetchCsv(url: string, options: SourceOptions = {}): Promise<string | null> {
  const zip = await fetchBytes(url, options.fetch)
  if (zip === null) return null
  if (options.verifyChecksums ?? true) {
    const checksum = await fetchBytes(`${url}.CHECKSUM`, options.fetch)
    if (checksum === null) {
      throw new DownloadError(`no checksum file for ${url} (${url}.CHECKSUM is 404); use --no-checksum to skip verification`)
    }
    verifyChecksum(zip, new TextDecoder().decode(checksum), url)
  }
  return csvFromZip(zip, url)
}

// ---------------------------------------------------------------------------------------------
// Whole downloads
// ---------------------------------------------------------------------------------------------

export interface DownloadOptions extends SourceOptions {
  symbol: string
  market: Market
  /** `YYYY-MM` or `YYYY-MM-DD`, inclusive (see parseSpan). */
  from: string
  /** `YYYY-MM` or `YYYY-MM-DD`, inclusive. */
  to: string
  baseUrl?: string
  /** Decides which daily files can exist; injectable for tests. */
  now?: Date
  /** Progress and warnings, one line each. */
  log?: (line: string) => void
}

export interface DownloadResult<T> {
  rows: T[]
  /** Files fetched and parsed. */
  files: number
  /** URLs that were 404 and skipped. */
  missing: string[]
  badRows: number
  duplicates: number
}

const stderrLog = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

/** Show a few bad rows per file; a broken file could have thousands. */
function reportBadRows(url: string, bad: readonly BadRow[], log: (line: string) => void): void {
  if (bad.length === 0) return
  log(`  ${bad.length} bad row(s) skipped in ${url}`)
  for (const b of bad.slice(0, 3)) log(`    line ${b.line}: ${b.reason}: ${b.text}`)
}

/** Fetch and parse every URL in turn; 404s are collected, everything else is fatal. */
async function collect<T>(
  urls: readonly string[],
  parse: (csv: string) => Parsed<T>,
  options: DownloadOptions,
  result: DownloadResult<T>,
): Promise<void> {
  const log = options.log ?? stderrLog
  for (const url of urls) {
    const csv = await fetchCsv(url, options)
    if (csv === null) {
      log(`  missing (404), skipped: ${url}`)
      result.missing.push(url)
      continue
    }
    const parsed = parse(csv)
    reportBadRows(url, parsed.bad, log)
    result.files++
    result.badRows += parsed.bad.length
    for (const row of parsed.rows) result.rows.push(row)
  }
}

function emptyResult<T>(): DownloadResult<T> {
  return { rows: [], files: 0, missing: [], badRows: 0, duplicates: 0 }
}

/** Rows whose time lies in the span; a monthly file covers more than a span of days. */
function inSpan<T>(rows: readonly T[], timeOf: (row: T) => number, span: Span): T[] {
  return rows.filter((row) => timeOf(row) >= span.startMs && timeOf(row) < span.endMs)
}

/**
 * All 1-minute candles of one symbol for the span: monthly files, with a fall back to the
 * finished days' daily files (those inside the span) for any month whose monthly file is not
 * published. Rows outside the span are dropped.
 */
export async function downloadKlines(options: DownloadOptions): Promise<DownloadResult<Candle>> {
  const baseUrl = options.baseUrl ?? DEFAULT_BASE_URL
  const log = options.log ?? stderrLog
  const now = options.now ?? new Date()
  const span = parseSpan(options.from, options.to)
  const result = emptyResult<Candle>()

  for (const month of span.months) {
    const url = klinesUrl(baseUrl, options.market, options.symbol, 'monthly', month)
    log(`${options.symbol} ${options.market} ${month}: ${url}`)
    const csv = await fetchCsv(url, options)
    if (csv !== null) {
      const parsed = parseKlineCsv(csv)
      reportBadRows(url, parsed.bad, log)
      result.files++
      result.badRows += parsed.bad.length
      for (const row of parsed.rows) result.rows.push(row)
      continue
    }
    // Not published as a month (usually the current one): use the days that are over instead.
    const days = finishedDaysOfMonth(month, now).filter((day) => {
      const startMs = Date.parse(`${day}T00:00:00Z`)
      return startMs >= span.startMs && startMs < span.endMs
    })
    log(`  monthly file not found (404); trying ${days.length} daily file(s)`)
    const dailyUrls = days.map((day) => klinesUrl(baseUrl, options.market, options.symbol, 'daily', day))
    await collect(dailyUrls, parseKlineCsv, options, result)
  }

  const merged = mergeByTime(inSpan(result.rows, (c) => c.openTimeMs, span), (c) => c.openTimeMs)
  return { ...result, rows: merged.rows, duplicates: merged.duplicates }
}

/** All USD-M funding rates of one symbol for the span (monthly files only, trimmed to the span). */
export async function downloadFunding(options: DownloadOptions): Promise<DownloadResult<FundingRate>> {
  const baseUrl = options.baseUrl ?? DEFAULT_BASE_URL
  const log = options.log ?? stderrLog
  const span = parseSpan(options.from, options.to)
  const result = emptyResult<FundingRate>()
  const urls = span.months.map((month) => fundingUrl(baseUrl, options.symbol, month))
  log(`${options.symbol} funding: ${urls.length} monthly file(s)`)
  await collect(urls, parseFundingCsv, options, result)
  const merged = mergeByTime(inSpan(result.rows, (r) => r.fundingTimeMs, span), (r) => r.fundingTimeMs)
  return { ...result, rows: merged.rows, duplicates: merged.duplicates }
}

/**
 * The rows of `path` (a file this script or the shared data set wrote) that lie outside the span,
 * to be kept beside the span's fresh rows; [] when the file does not exist. A file with unreadable
 * rows stops the run: merging would silently drop them.
 */
export async function rowsOutsideSpan<T>(
  path: string,
  parse: (csv: string) => Parsed<T>,
  timeOf: (row: T) => number,
  span: Span,
): Promise<T[]> {
  let text: string
  try {
    text = gunzipSync(await readFile(path)).toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new DownloadError(`cannot read the existing ${path} to merge into: ${describeError(err)}; move it away or use --replace`)
  }
  const parsed = parse(text)
  if (parsed.bad.length > 0) {
    const first = parsed.bad[0]!
    throw new DownloadError(
      `the existing ${path} has ${parsed.bad.length} unreadable row(s) (line ${first.line}: ${first.reason}); ` +
        'move it away or use --replace',
    )
  }
  return parsed.rows.filter((row) => timeOf(row) < span.startMs || timeOf(row) >= span.endMs)
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const HELP = `Download Binance 1-minute klines from data.binance.vision into gzip'd CSV.

Usage: npm run download -- --symbol BNBUSDT[,BTCUSDT] --from 2026-03 [--to 2026-04] [options]

  --symbol SYM     symbol, repeatable or comma separated (e.g. BNBUSDT,BTCUSDT)
  --market M       spot (default) or um (USD-M perpetual futures)
  --from DATE      first month (YYYY-MM) or day (YYYY-MM-DD) of the span, inclusive, UTC
  --to DATE        last month or day of the span, inclusive (default: --from)
  --out DIR        output directory (default: data/)
  --replace        write only this span, dropping what the files held before
  --base-url URL   mirror of ${DEFAULT_BASE_URL}
  --funding        also fetch funding rates (um only)
  --no-checksum    do not verify the .CHECKSUM files
  --help           show this text

Writes {SYMBOL}-1m.csv.gz (spot), {SYMBOL}-PERP-1m.csv.gz (um) and
{SYMBOL}-PERP-funding-8h.csv.gz. The span's rows are merged into an existing
file of the same name: its rows outside the span are kept, those inside are
replaced. So two runs with two spans give one file holding both:
  npm run download -- --symbol BNBUSDT,BTCUSDT --from 2021-04-02 --to 2021-07-10
  npm run download -- --symbol BNBUSDT,BTCUSDT --from 2026-03-23 --to 2026-04-22
A month not yet published as a monthly file falls back to its daily files.
Missing files (404) are reported and skipped; other HTTP errors and checksum
mismatches stop the run with exit code 1. Bad usage exits with 2.`

export interface CliConfig {
  symbols: string[]
  market: Market
  from: string
  to: string
  out: string
  replace: boolean
  baseUrl: string
  funding: boolean
  verifyChecksums: boolean
}

/** Parse and check the command line; returns 'help' for --help. Throws on bad usage. */
export function parseCli(argv: string[]): CliConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      symbol: { type: 'string', multiple: true },
      market: { type: 'string', default: 'spot' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string', default: 'data/' },
      replace: { type: 'boolean', default: false },
      'base-url': { type: 'string', default: DEFAULT_BASE_URL },
      funding: { type: 'boolean', default: false },
      'no-checksum': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return 'help'

  const symbols = (values.symbol ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean)
  if (symbols.length === 0) throw new Error('--symbol is required')
  // Symbols go straight into URL paths and file names.
  for (const s of symbols) if (!/^[A-Z0-9]+$/.test(s)) throw new Error(`bad symbol ${JSON.stringify(s)}`)

  const market = values.market
  if (market !== 'spot' && market !== 'um') throw new Error(`--market must be spot or um, got ${JSON.stringify(market)}`)
  if (values.funding && market !== 'um') throw new Error('--funding needs --market um (funding exists only for futures)')

  if (!values.from) throw new Error('--from YYYY-MM or YYYY-MM-DD is required')
  const from = values.from
  const to = values.to ?? from
  parseSpan(from, to) // validates both dates and their order

  return {
    symbols,
    market,
    from,
    to,
    out: values.out,
    replace: values.replace,
    baseUrl: values['base-url'],
    funding: values.funding,
    verifyChecksums: !values['no-checksum'],
  }
}

/** Summary of one written file: the whole file's rows, then what this span's download added. */
function summaryLines(
  what: string,
  path: string,
  result: DownloadResult<unknown>,
  written: { rows: number; kept: number; span: Span },
  candles?: CandleSummary,
): string[] {
  const lines = [`${what} -> ${path}`]
  if (candles) {
    lines.push(
      `  rows ${candles.rows}, first candle ${formatUtcMinute(candles.firstMs)} UTC, ` +
        `last candle ${formatUtcMinute(candles.lastMs)} UTC, gaps ${candles.gaps}`,
    )
  } else {
    lines.push(`  rows ${written.rows}`)
  }
  lines.push(
    `  span ${describeSpan(written.span)}: ${result.rows.length} rows downloaded, ` +
      `${written.kept} kept from the existing file outside the span`,
  )
  lines.push(
    `  files ${result.files}, missing (404) ${result.missing.length}, bad rows ${result.badRows}, ` +
      `duplicates dropped ${result.duplicates}`,
  )
  return lines
}

/** The rows to write: the span's download, plus (unless --replace) the file's rows outside it. */
async function withKeptRows<T>(
  path: string,
  downloaded: readonly T[],
  parse: (csv: string) => Parsed<T>,
  timeOf: (row: T) => number,
  span: Span,
  replace: boolean,
): Promise<{ rows: T[]; kept: number }> {
  const kept = replace ? [] : await rowsOutsideSpan(path, parse, timeOf, span)
  return { rows: mergeByTime([...kept, ...downloaded], timeOf).rows, kept: kept.length }
}

/** Run the whole download; returns the process exit code. */
export async function runCli(argv: string[], log: (line: string) => void = stderrLog): Promise<number> {
  let config: CliConfig | 'help'
  try {
    config = parseCli(argv)
  } catch (err) {
    log(`error: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`)
    return 2
  }
  if (config === 'help') {
    process.stdout.write(`${HELP}\n`)
    return 0
  }

  await mkdir(config.out, { recursive: true })
  const summary: string[] = []
  let empty = 0
  const common = { market: config.market, from: config.from, to: config.to, baseUrl: config.baseUrl }
  const source = { verifyChecksums: config.verifyChecksums, log }
  const span = parseSpan(config.from, config.to)

  try {
    for (const symbol of config.symbols) {
      const klines = await downloadKlines({ symbol, ...common, ...source })
      const path = join(config.out, klinesFileName(symbol, config.market))
      // An all-404 result usually means a typo'd symbol or months before the listing:
      // say so rather than write an empty file that looks like a successful download.
      if (klines.rows.length === 0) {
        empty++
        summary.push(`${symbol} ${config.market}: no candles found, nothing written`)
      } else {
        const out = await withKeptRows(path, klines.rows, parseKlineCsv, (c) => c.openTimeMs, span, config.replace)
        await writeGzip(path, candlesToCsv(out.rows))
        const written = { rows: out.rows.length, kept: out.kept, span }
        summary.push(...summaryLines(`${symbol} ${config.market}`, path, klines, written, summariseCandles(out.rows)))
      }

      if (config.funding) {
        const funding = await downloadFunding({ symbol, ...common, ...source })
        const fundingPath = join(config.out, fundingFileName(symbol))
        if (funding.rows.length === 0) {
          empty++
          summary.push(`${symbol} funding: no funding rates found, nothing written`)
        } else {
          const out = await withKeptRows(fundingPath, funding.rows, parseOutputFundingCsv, (r) => r.fundingTimeMs, span, config.replace)
          await writeGzip(fundingPath, fundingToCsv(out.rows))
          summary.push(...summaryLines(`${symbol} funding`, fundingPath, funding, { rows: out.rows.length, kept: out.kept, span }))
        }
      }
    }
  } catch (err) {
    log(`error: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  }

  process.stdout.write(`${summary.join('\n')}\n`)
  return empty > 0 ? 1 : 0
}

/** True when this file is the program being run, not a module imported by a test. */
function isMain(): boolean {
  const script = process.argv[1]
  if (!script) return false
  try {
    // import.meta.url is the resolved path; resolve argv[1] too so a symlinked checkout still matches.
    return import.meta.url === pathToFileURL(realpathSync(script)).href
  } catch {
    return false
  }
}

if (isMain()) {
  process.exitCode = await runCli(process.argv.slice(2))
}
