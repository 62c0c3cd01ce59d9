import t from 'tap'
import {
  ConfigError, InferenceError, kErrorTable, ModelIncompatibleError, ModelLoadError,
  ServiceError, StateFileError,
} from '../src/errors.js'

t.test('every error class carries its code, status, wire code and default message from the table', async (t) => {
  const cases: Array<[ServiceError, string, string]> = [
    [new ServiceError('ERR_INVALID_JSON'), 'ERR_INVALID_JSON', 'ServiceError'],
    [new ServiceError('ERR_MODEL_NOT_LOADED'), 'ERR_MODEL_NOT_LOADED', 'ServiceError'],
    [new ServiceError('ERR_OVERLOADED'), 'ERR_OVERLOADED', 'ServiceError'],
    [new ServiceError('ERR_DEADLINE_EXCEEDED'), 'ERR_DEADLINE_EXCEEDED', 'ServiceError'],
    [new InferenceError(undefined, new Error('boom')), 'ERR_INFERENCE', 'InferenceError'],
    [new ConfigError(['WORKERS (env) must be an integer >= 1, got "abc"']), 'ERR_CONFIG_INVALID', 'ConfigError'],
    [new ModelIncompatibleError('feature 3 differs'), 'ERR_MODEL_INCOMPATIBLE', 'ModelIncompatibleError'],
    [new ModelLoadError('cannot read'), 'ERR_MODEL_LOAD', 'ModelLoadError'],
    [new StateFileError('checksum', 'SHA-256 checksum does not match'), 'ERR_STATE_FILE', 'StateFileError'],
  ]
  for (const [err, code, name] of cases) {
    const spec = kErrorTable[code as keyof typeof kErrorTable]
    t.equal(err.code, code, `${name}.code`)
    t.equal(err.name, name, `${name}.name`)
    t.equal(err.statusCode, spec.statusCode, `${name}.statusCode`)
    t.equal(err.wireCode, spec.wireCode, `${name}.wireCode`)
    t.ok(err instanceof Error && err instanceof ServiceError, `${name} is an Error`)
    t.ok(typeof err.stack === 'string' && err.stack.includes(name), `${name} has a stack`)
  }
  t.equal(new ServiceError('ERR_OVERLOADED').headers?.['Retry-After'], '1', 'Overloaded carries Retry-After')
  t.equal(new ServiceError('ERR_MODEL_NOT_LOADED').message, 'Model not loaded', "the contract's detail text")
  t.match(new ConfigError(['a', 'b']).message, /a\n {2}- b/, 'config errors list every problem')
  t.equal((new InferenceError(undefined, new Error('boom')).cause as Error).message, 'boom', 'cause kept for logs')
  t.equal(new StateFileError('bar_ms', 'bar_ms 30000').reason, 'bar_ms', 'a state file refusal names its reason')
})
