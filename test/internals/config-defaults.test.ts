// Sync check (STYLE B8): the shipped config/default.json holds every setting, in schema order, with
// exactly the schema's default, so reading the file and reading the schema can never disagree.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

import { configFromSettings, loadConfig, packageRoot } from '../../src/config/load.js'
import { kSettingKeys, schemaDefaults } from '../../src/config/schema.js'

const kDefaultFile = join(packageRoot(), 'config', 'default.json')

t.test('package root is the folder with package.json and config/', async (t) => {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name: string }
  t.equal(pkg.name, 'ml-prediction-server')
})

t.test('config/default.json equals the schema defaults', async (t) => {
  const shipped = JSON.parse(readFileSync(kDefaultFile, 'utf8')) as Record<string, unknown>
  t.strictSame(shipped, schemaDefaults())
  t.strictSame(Object.keys(shipped), [...kSettingKeys], 'every key, in schema order')
})

t.test('loading the shipped file changes nothing', async (t) => {
  t.strictSame(loadConfig({ argv: [], env: {} }), configFromSettings({}))
})

t.test('config/app.json is the bot-side example from the contract, verbatim', async (t) => {
  const text = readFileSync(join(packageRoot(), 'config', 'app.json'), 'utf8')
  t.strictSame(JSON.parse(text), {
    ml_service: { enabled: true, base_url: 'http://localhost:8000', timeout_ms: 100, confidence_threshold: 0.55, weight: 0.4 },
  })
})
