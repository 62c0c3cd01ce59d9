/**
 * Capture files stay bounded and never fail a request: rotation by time, oldest-first deletion by
 * size, deletion by age, an unwritable folder and a full disk (a 64 KiB tmpfs, when this runs as
 * root; skipped otherwise) are counted in /metrics while every prediction is answered.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { listCaptureFiles, readCaptureFiles } from '../../src/features/capture-file.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const kBarMs = 60_000
const kBar0 = Math.floor((Date.now() - 5 * 3_600_000) / kBarMs) * kBarMs

/** `n` bars of `symbol` from `first`, one request each (answers checked: capture never fails one). */
async function bars (t: Test, url: string, symbol: string, first: number, n: number): Promise<void> {
  const requests = []
  for (let b = first; b < first + n; b++) {
    requests.push({ symbol, price: 600 + Math.sin(b) * 5 + b * 1e-3, volume: 1000 + b, timestamp_ms: kBar0 + b * kBarMs, bid_volume: b % 17, ask_volume: 3, best_bid: 599, best_ask: 601 })
  }
  const res = await postJson(`${url}/predict/batch`, { requests })
  t.equal(res.status, 200)
  t.equal((res.body.predictions as unknown[]).length, n, 'every prediction answered')
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('rotation by time; the oldest file goes past capture_max_bytes, an old one past capture_max_age_s', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'capture-rot-'))
  const big = join(dir, 'capture-20200101T000000000Z.csv.gz')
  const old = join(dir, 'capture-20200102T000000000Z.csv.gz')
  const other = join(dir, 'notes.txt')
  writeFileSync(big, Buffer.alloc(70_000))
  writeFileSync(old, Buffer.alloc(10))
  writeFileSync(other, 'not a capture file')
  utimesSync(old, new Date(2020, 0, 2), new Date(2020, 0, 2))
  const { server, url } = await startServer(t, { capture_dir: dir, capture_max_bytes: 65_536, capture_file_s: 1, capture_max_age_s: 3600 })
  await bars(t, url, 'ROT', 0, 30)
  await sleep(1300) // one flush: a new file; the 70 kB one is over the limit, the other too old
  await bars(t, url, 'ROT', 30, 30)
  await sleep(1300) // capture_file_s = 1: the next flush opens a second file
  await server.close()
  const names = readdirSync(dir).sort()
  t.notOk(names.includes('capture-20200101T000000000Z.csv.gz'), 'the oldest file went past capture_max_bytes')
  t.notOk(names.includes('capture-20200102T000000000Z.csv.gz'), 'the file last written in 2020 went past capture_max_age_s')
  t.ok(names.includes('notes.txt'), 'files that are not capture files are left alone')
  const files = listCaptureFiles(dir)
  t.ok(files.length >= 2, `rotated: ${files.length} files`)
  let total = 0
  for (const f of files) total += statSync(f).size
  t.ok(total <= 65_536, `within capture_max_bytes: ${total}`)
  const cap = readCaptureFiles(files, 'ROT')
  t.equal(cap.length, 59, 'every closed bar (all but the open last one), across the files')
})

t.test('an unwritable capture folder is counted, never a failed request', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'capture-bad-'))
  const file = join(parent, 'a-file')
  writeFileSync(file, 'x')
  const { url } = await startServer(t, { capture_dir: join(file, 'capture') })
  await bars(t, url, 'BAD', 0, 20)
  await sleep(1300)
  await bars(t, url, 'BAD', 20, 5)
  const m = (await getJson(`${url}/metrics`)).body
  t.ok(m.capture.errors.ENOTDIR >= 1, 'ENOTDIR counted')
  t.equal(m.capture.rows_written, 0)
  t.ok(m.capture.rows_dropped >= 18, `rows dropped: ${m.capture.rows_dropped}`)
  const prom = await (await fetch(`${url}/metrics/prometheus`)).text()
  t.match(prom, /ml_capture_errors_total\{code="ENOTDIR"\} [1-9]/)
})

t.test('a full disk is counted, the file stays readable, requests are answered', async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'capture-full-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' })
  } catch {
    t.pass('skipped', { skip: 'cannot mount a small tmpfs here (not root)' })
    return
  }
  t.teardown(() => { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }) })
  const dir = join(mnt, 'cap')
  mkdirSync(dir)
  const { server, url } = await startServer(t, { capture_dir: dir })
  await bars(t, url, 'FULL', 0, 20)
  await sleep(1300) // the first flush fits
  const before = (await getJson(`${url}/metrics`)).body.capture
  // 20 bars: 19 closed, 18 of them past their label's bar (a closed bar is written once the next one closes).
  t.equal(before.rows_written, 18, 'written while there was room')
  // Fill the rest of the disk.
  try { writeFileSync(join(mnt, 'filler'), Buffer.alloc(64 * 1024)) } catch { /* ENOSPC: full, as wanted */ }
  await bars(t, url, 'FULL', 20, 200)
  await sleep(1300)
  const m = (await getJson(`${url}/metrics`)).body.capture
  t.ok(m.errors.ENOSPC >= 1, 'ENOSPC counted')
  t.ok(m.rows_dropped >= 199, `rows dropped: ${m.rows_dropped}`)
  await server.close()
  const cap = readCaptureFiles(listCaptureFiles(dir), 'FULL')
  t.equal(cap.length, before.rows_written, 'the failed append was cut off: the file reads back whole')
})
