// The model cache as a GitHub-hosted runner uses it: the bundled action, run twice as two jobs on
// two fresh machines (nothing on disk carries over), against the rig's Actions cache service (a
// real Azure Blob server, Azurite, behind the rig's stand-in for GitHub's cache index). The first
// job downloads the model from MLflow and saves it; the second builds into another repository,
// so it needs the model again, and restores it instead of downloading.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rigEnv } from '../rig-env.js'
import { rigInputs, runAction, expectSuccess } from './run-action.js'

const RUN = Date.now().toString(36)
const name = `e2e-model-cache-${RUN}`

/** What GitHub's hosted runner gives an action; RUNNER_TEMP is the same path in every job. */
function hostedRunner(temp: string): Record<string, string> {
  return {
    RUNNER_ENVIRONMENT: 'github-hosted',
    RUNNER_TEMP: temp,
    ACTIONS_RESULTS_URL: rigEnv('ACTIONS_RESULTS_URL'),
    ACTIONS_RUNTIME_TOKEN: rigEnv('ACTIONS_RUNTIME_TOKEN'),
    ACTIONS_CACHE_SERVICE_V2: rigEnv('ACTIONS_CACHE_SERVICE_V2'),
  }
}

afterAll(async () => {
  await runAction({ ...rigInputs(), 'model-uri': `models:/${rigEnv('FIXTURE_MODEL')}/1`, action: 'delete', name })
})

test('GitHub-hosted runner: the second job restores the model from the Actions cache instead of downloading it', async () => {
  // The cache service keys an entry by its path too, and this path is new in every run of the
  // test: the first job always starts cold.
  const temp = mkdtempSync(join(tmpdir(), 'runner-temp-'))
  const job = (repository: string) =>
    runAction(
      {
        ...rigInputs(),
        'model-uri': `models:/${rigEnv('FIXTURE_MODEL')}/1`,
        'image-repository': `${rigEnv('REGISTRY')}/${repository}`,
        target: 'knative',
        name,
        wait: 'false',
        'smoke-test': 'false',
      },
      hostedRunner(temp),
    )
  try {
    const first = await job(`e2e-model-cache-${RUN}-a`)
    expectSuccess(first)
    expect(first.stdout).toMatch(/model (saved to the Actions cache|was not saved)/)
    expect(first.stdout).toContain('model files downloaded')

    // The next job runs on a fresh machine: the runner gives it an empty RUNNER_TEMP at the same path.
    rmSync(temp, { recursive: true, force: true })
    mkdirSync(temp)
    const second = await job(`e2e-model-cache-${RUN}-b`)
    expectSuccess(second)
    expect(second.stdout).toMatch(/model restored from the Actions cache in \d+\.\d s/)
    expect(second.stdout).toContain('model files from the cache')
  } finally {
    rmSync(temp, { recursive: true, force: true })
  }
}, 300_000)
