/**
 * The synthetic candles `npm run example` replays on a fresh clone are committed; they must be
 * exactly what examples/make-fixture.ts generates, so the generator stays the file's source.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { kFixtureUrl, syntheticCandlesCsv } from '../../examples/make-fixture.js'
import { readCandleFile } from '../../src/features/candle-file.js'

const kRoot = fileURLToPath(new URL('../../', import.meta.url))

t.test('the committed fixture is the generator output and not git-ignored', async (t) => {
  t.equal(readFileSync(kFixtureUrl, 'utf8'), syntheticCandlesCsv(), 'regenerate with npx tsx examples/make-fixture.ts')
  const path = fileURLToPath(kFixtureUrl).slice(kRoot.length)
  // .gitignore hides every data/ folder; a fixture there would be missing from every clone.
  const ignored = (() => {
    try { execFileSync('git', ['check-ignore', '-q', path], { cwd: kRoot }); return true } catch { return false }
  })()
  t.notOk(ignored, `${path} is not git-ignored`)
  const candles = readCandleFile(fileURLToPath(kFixtureUrl))
  t.equal(candles.length, 240)
  for (let i = 1; i < candles.length; i++) {
    if (candles.openTimeMs[i]! - candles.openTimeMs[i - 1]! !== 60_000) t.fail(`gap at row ${i}`)
  }
})
