import t from 'tap'
import { configFromSettings } from '../../src/config/load.js'
import { createLogger } from '../../src/log/logger.js'
import { PredictionServer } from '../../src/server/app.js'
import { getJson, startServer } from '../helpers/start-server.js'

t.test('a second server on a port already served fails to start instead of sharing its connections', async (t) => {
  const first = await startServer(t, { workers: 1 })
  const config = configFromSettings({ host: '127.0.0.1', port: first.port, workers: 1, warmup_runs: 1, log_level: 'silent' })
  await t.rejects(PredictionServer.start(config, createLogger('silent', null)), /could not listen on 127\.0\.0\.1:\d+ \(in use/)
  t.equal((await getJson(`${first.url}/health`)).status, 200, 'the first server still answers')
})
