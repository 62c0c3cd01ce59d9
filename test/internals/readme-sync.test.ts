import { readFileSync } from 'node:fs'
import t from 'tap'
import { renderSettingsTable } from '../../src/config/schema.js'
import { kErrorTable, type ErrorCode } from '../../src/errors.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

function section (name: string): string {
  const start = readme.indexOf(`<!-- ${name}:start`)
  const end = readme.indexOf(`<!-- ${name}:end -->`)
  if (start < 0 || end < 0) throw new Error(`README has no ${name} markers`)
  return readme.slice(readme.indexOf('\n', start) + 1, end).trim()
}

t.test('the README settings table is the one generated from the schema', async (t) => {
  t.equal(section('settings'), renderSettingsTable().trim(), 'regenerate with renderSettingsTable() from src/config/schema.ts')
})

t.test('the README error table lists exactly the registry, with the same statuses and wire codes', async (t) => {
  const rows = section('errors').split('\n').slice(2)
  const documented = new Map<string, { http: string, wire: string }>()
  for (const row of rows) {
    const cells = row.split('|').map(c => c.trim())
    documented.set(cells[1]!.replaceAll('`', ''), { http: cells[2]!, wire: cells[3]!.replaceAll('`', '') })
  }
  t.same([...documented.keys()].sort(), Object.keys(kErrorTable).sort(), 'same codes')
  for (const code of Object.keys(kErrorTable) as ErrorCode[]) {
    const spec = kErrorTable[code]
    const doc = documented.get(code)
    if (doc === undefined) continue
    t.equal(doc.wire, spec.wireCode ?? '-', `${code} wire code`)
    if (doc.http !== '-') t.equal(Number(doc.http), spec.statusCode, `${code} HTTP status`)
  }
})
