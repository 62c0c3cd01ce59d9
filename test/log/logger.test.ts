import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { configFromSettings } from '../../src/config/load.js'
import { kSettingKeys, printableSettings } from '../../src/config/schema.js'
import { ModelLoadError, ServiceError } from '../../src/errors.js'
import { loggerOptions, resolveLogFormat, serializeError } from '../../src/log/logger.js'

/** A pino logger with the service's options writing parsed lines into an array. */
function capture (): { log: pino.Logger, lines: () => Array<Record<string, any>>, text: () => string } {
  const chunks: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { chunks.push(String(chunk)); done() } })
  const log = pino(loggerOptions('info'), stream)
  const text = (): string => chunks.join('')
  return { log, text, lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>) }
}

t.test('auto is pretty on a terminal and JSON otherwise; explicit formats win', async (t) => {
  t.equal(resolveLogFormat('auto', true), 'pretty')
  t.equal(resolveLogFormat('auto', false), 'json')
  t.equal(resolveLogFormat('json', true), 'json')
  t.equal(resolveLogFormat('pretty', false), 'pretty')
})

t.test('printableSettings: snake_case keys in schema order, secrets redacted, an unset secret stays null', async (t) => {
  const token = 'tok-' + Math.random().toString(36).slice(2)
  const shown = printableSettings(configFromSettings({ admin_token: token, workers: 3 }))
  t.strictSame(Object.keys(shown), [...kSettingKeys])
  t.equal(shown.admin_token, '[redacted]')
  t.equal(shown.workers, 3)
  t.notMatch(JSON.stringify(shown), token)
  t.equal(printableSettings(configFromSettings({})).admin_token, null)
})

t.test('pino redact censors a secret logged under its name, whoever logs it', async (t) => {
  const token = 'tok-' + Math.random().toString(36).slice(2)
  const { log, lines, text } = capture()
  const config = configFromSettings({ admin_token: token })
  log.info({ config }, 'the camelCase config, one level down')
  log.info({ settings: { admin_token: token } }, 'snake_case, one level down')
  log.info({ admin_token: token, adminToken: token }, 'top level')
  log.info({ req: { headers: { authorization: `Bearer ${token}` } } }, 'a request header')
  t.equal(lines().length, 4, 'four lines written')
  t.notMatch(text(), token, 'the token is nowhere in the output')
  t.equal(lines()[0]!.config.adminToken, '[redacted]')
  t.equal(lines()[1]!.settings.admin_token, '[redacted]')
  t.equal(lines()[2]!.admin_token, '[redacted]')
  t.equal(lines()[3]!.req.headers.authorization, '[redacted]')
  log.info({ settings: { admin_token: null } }, 'not set')
  t.equal(lines()[4]!.settings.admin_token, null, 'an unset secret stays null')
})

t.test('our errors log as type, code, message and cause; others keep their stack', async (t) => {
  const err = new ModelLoadError('model not found at /x.onnx', new Error('ENOENT: no such file'))
  t.strictSame(serializeError(err), { type: 'ModelLoadError', code: 'ERR_MODEL_LOAD', message: 'model not found at /x.onnx', cause: 'ENOENT: no such file' })
  t.strictSame(serializeError(new ServiceError('ERR_INTERNAL')), { type: 'ServiceError', code: 'ERR_INTERNAL', message: 'Internal server error' })
  const bug = serializeError(new TypeError('x is undefined')) as Record<string, unknown>
  t.equal(bug.type, 'TypeError')
  t.match(bug.stack, /TypeError: x is undefined\n\s+at /)
  const { log, text } = capture()
  log.error({ err }, 'logged')
  t.match(text(), 'ERR_MODEL_LOAD')
  t.notMatch(text(), /stack|statusCode|wireCode/)
})
