import t from 'tap'
import { closestName, editDistance } from '../../src/config/did-you-mean.js'
import { envNearMisses } from '../../src/config/load.js'
import { kSettingKeys, kSettings } from '../../src/config/schema.js'

t.test('editDistance counts insertions, deletions, substitutions and adjacent swaps as one', async (t) => {
  t.equal(editDistance('', ''), 0)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('abc', ''), 3)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('workers', 'wokers'), 1, 'deletion')
  t.equal(editDistance('workers', 'wrokers'), 1, 'transposition')
  t.equal(editDistance('port', 'prot'), 1, 'transposition')
  t.equal(editDistance('ab', 'ba'), 1)
  t.equal(editDistance('ca', 'abc'), 3, 'optimal string alignment: no edit inside a swapped pair')
})

t.test('closestName: spelling variants are free, slips are bounded by length', async (t) => {
  t.equal(closestName('wokers', kSettingKeys), 'workers')
  t.equal(closestName('wrokers', kSettingKeys), 'workers')
  t.equal(closestName('maxBatchSize', kSettingKeys), 'max_batch_size')
  t.equal(closestName('MAX-BATCH-SIZE', kSettingKeys), 'max_batch_size')
  t.equal(closestName('max_bach_size', kSettingKeys), 'max_batch_size')
  t.equal(closestName('prot', kSettingKeys), 'port')
  t.equal(closestName('log_levle', kSettingKeys), 'log_level')
  t.equal(closestName('proto', kSettingKeys), undefined, 'two edits are too many for five letters')
  t.equal(closestName('unknown_key', kSettingKeys), undefined)
  t.equal(closestName('ml_service', kSettingKeys), undefined)
  t.equal(closestName('___', kSettingKeys), undefined, 'nothing left to compare')
})

t.test('envNearMisses: a slip for one of our variables is named, other programs\' variables are not', async (t) => {
  // Variables a shell, a container or CI typically set: none may be taken for ours.
  const ambient = Object.fromEntries([
    'PATH', 'HOME', 'HOSTNAME', 'HOSTTYPE', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'COLORTERM', 'LANG', 'PWD',
    'OLDPWD', 'SHLVL', 'TZ', 'NODE_ENV', 'NODE_OPTIONS', 'INIT_CWD', 'NO_COLOR', 'FORCE_COLOR', 'DEBUG', 'CI',
    'TMPDIR', 'EDITOR', 'DISPLAY', 'ML_PREDICTION_SERVER_PORT', 'ML_PREDICTION_SERVER_SERVICE_HOST', 'KUBERNETES_PORT',
    'WORKDIR', 'LOG_DIR', 'MODEL_DIR', 'npm_config_cache',
  ].map((name) => [name, 'x']))
  t.strictSame(envNearMisses(ambient), [])
  const ours = Object.fromEntries(kSettingKeys.map((key) => [kSettings[key].env, '1']))
  t.strictSame(envNearMisses({ ...ours, CONFIG_FILE: 'x' }), [], 'our own names are not misses')
  t.strictSame(envNearMisses({ WOKERS: '2', LOG_LEVLE: 'debug', max_batch_size: '8', CONFIG_FIEL: 'x', HOME: '/root' }), [
    'WOKERS (env) is not a variable this server reads (did you mean WORKERS?)',
    'LOG_LEVLE (env) is not a variable this server reads (did you mean LOG_LEVEL?)',
    'max_batch_size (env) is not a variable this server reads (did you mean MAX_BATCH_SIZE?)',
    'CONFIG_FIEL (env) is not a variable this server reads (did you mean CONFIG_FILE?)',
  ])
  t.strictSame(envNearMisses({ WORKERZZ: '2' }), [], 'two edits are not a slip in the environment')
  t.strictSame(envNearMisses({ WOKERS: undefined }), [], 'an unset variable is not there')
})
