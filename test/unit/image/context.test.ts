import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createBuildContext,
  installedRequirements,
  KSERVE_VERSION,
  MODEL_DIR_IN_IMAGE,
  READINESS_PATH,
  renderDockerfile,
  writeBuildFiles,
} from '../../../src/image/context.js'
import { runtimeIdentity } from '../../../src/image/index.js'
import { MLSERVER_RUNTIME_PY, SERVER_PY } from '../../../src/image/python/embedded.js'
import type { Runtime } from '../../../src/inputs.js'
// @ts-expect-error: a plain .mjs script without types
import { readSources, render } from '../../../scripts/embed-python.mjs'

const lines = (runtime: Runtime) => renderDockerfile(runtime).split('\n')
const index = (runtime: Runtime, re: RegExp) => lines(runtime).findIndex((l) => re.test(l))

describe.each<Runtime>(['kserve', 'mlserver'])('the generated %s Dockerfile', (runtime) => {
  const text = renderDockerfile(runtime)

  test('starts FROM the pinned base given as a build arg', () => {
    expect(lines(runtime).slice(0, 4).join('\n')).toMatch(/ARG BASE_IMAGE\nFROM \$\{BASE_IMAGE\}/)
  })

  test('installs the requirements in their own layer before the model is copied', () => {
    const copyReqs = index(runtime, /^COPY requirements.txt /)
    const install = index(runtime, /install.sh -r /)
    const copyModel = index(runtime, /^COPY .*model\/ /)
    expect(copyReqs).toBeGreaterThan(0)
    expect(install).toBeGreaterThan(copyReqs)
    expect(copyModel).toBeGreaterThan(install)
    // Nothing that varies per model version comes before the install layer (it would break the cache).
    expect(
      lines(runtime)
        .slice(0, install)
        .some((l) => /MODEL_NAME|LABEL/.test(l)),
    ).toBe(false)
    // The model is the last file copied: everything else is shared between versions.
    expect(
      lines(runtime)
        .slice(copyModel + 1)
        .some((l) => /^(COPY|ADD|RUN) /.test(l)),
    ).toBe(false)
  })

  test('runs as the non-root uid 1000, after the root-only installs', () => {
    expect(lines(runtime).filter((l) => /^USER /.test(l))).toEqual(['USER root', 'USER 1000'])
    expect(index(runtime, /^USER 1000/)).toBeGreaterThan(index(runtime, /install.sh -r/))
    expect(text).toContain('COPY --chown=1000:0 model/')
  })

  test.each([['MLSERVER_MODEL_NAME=${MODEL_NAME}'], ['EXPOSE 8080'], [READINESS_PATH]])('sets %s', (t) => {
    expect(text).toContain(t)
  })
})

describe('mlserver', () => {
  test.each([
    ['MLSERVER_MODEL_IMPLEMENTATION=mlserver_runtime.MLflowRuntimeV2Errors'],
    ['PYTHONPATH=/opt/mlflow-k8s-deploy'],
    [`MLSERVER_MODEL_URI=${MODEL_DIR_IN_IMAGE}`],
    ['MLSERVER_HTTP_PORT=8080'],
    ['MLSERVER_PARALLEL_WORKERS=0'],
    [`CMD ["mlserver", "start", "${MODEL_DIR_IN_IMAGE}"]`],
  ])('sets %s', (t) => expect(renderDockerfile('mlserver')).toContain(t))

  test('resolves the requirements together with the base’s MLServer pins', () => {
    expect(renderDockerfile('mlserver')).toMatch(
      /mlserver==" \+ v\("mlserver"\), "mlserver-mlflow==" \+ v\("mlserver-mlflow"\)/,
    )
    expect(renderDockerfile('mlserver')).toMatch(/install.sh -r \/opt\/mlflow-k8s-deploy\/requirements.txt \$runtime/)
  })
})

describe('kserve', () => {
  const text = renderDockerfile('kserve')
  test.each([
    [`MLFLOW_MODEL_DIR=${MODEL_DIR_IN_IMAGE}`],
    ['CMD ["python", "/opt/mlflow-k8s-deploy/server.py"]'],
    [`"kserve==${KSERVE_VERSION}" "mlflow-skinny==`],
  ])('contains %s', (t) => expect(text).toContain(t))

  test('installs the runtime only where the base lacks it, before the requirements', () => {
    expect(text).toContain(
      `if ! python -c 'import importlib.metadata as m, importlib.util as u; m.version("kserve"); assert u.find_spec("mlflow")'`,
    )
    expect(index('kserve', /kserve==/)).toBeLessThan(index('kserve', /^COPY requirements.txt/))
  })

  test('copies the server before the model, so a new model version reuses its layer', () => {
    expect(index('kserve', /^COPY server.py /)).toBeLessThan(index('kserve', /^COPY .*model\/ /))
  })
})

describe('installedRequirements', () => {
  test.each<[string, Runtime, string]>([
    ['mlflow==3.17.2\nscikit-learn==1.6.1\n', 'kserve', 'mlflow-skinny==3.17.2\nscikit-learn==1.6.1\n'],
    ['MLflow>=3,<4\n', 'kserve', 'mlflow-skinny>=3,<4\n'],
    ['mlflow\n', 'kserve', 'mlflow-skinny\n'],
    ['mlflow ; python_version>"3"\n', 'kserve', 'mlflow-skinny ; python_version>"3"\n'],
    [
      'mlflow-skinny==3.1\nmlflow-tracing\nmlflow[gateway]==3\n',
      'kserve',
      'mlflow-skinny==3.1\nmlflow-tracing\nmlflow[gateway]==3\n',
    ],
    ['mlflow==3.17.2\n', 'mlserver', 'mlflow==3.17.2\n'],
    ['# only comments\n', 'kserve', ''],
  ])('%j for %s', (given, runtime, expected) => expect(installedRequirements(given, runtime)).toBe(expected))
})

describe('runtimeIdentity: switching runtime changes the image identity', () => {
  test.each<[Runtime, string, string | undefined, { name: string; version: string }]>([
    ['mlserver', 'seldonio/mlserver', '1.7.1', { name: 'mlserver', version: '1.7.1' }],
    ['mlserver', 'rig/mlserver-base', '1.7.1-py3.11', { name: 'mlserver', version: '1.7.1' }],
    ['kserve', 'kserve-base', '0.21.0-py3.11', { name: 'kserve', version: '0.21.0' }],
    ['kserve', 'library/python', '3.11.7-slim', { name: 'kserve', version: KSERVE_VERSION }],
    ['kserve', 'acme/base', undefined, { name: 'kserve', version: KSERVE_VERSION }],
  ])('%s on %s:%s', (runtime, repository, tag, expected) =>
    expect(runtimeIdentity(runtime, { repository, tag })).toEqual(expected),
  )
})

describe('writeBuildFiles', () => {
  test('kserve: Dockerfile, requirements as installed, the install script and the server', async () => {
    const ctx = await createBuildContext()
    expect(ctx.modelDir).toBe(join(ctx.dir, 'model'))
    await writeBuildFiles(ctx, 'mlflow==3.17.2\r\n# comment\r\nscikit-learn==1.6.1\r\n', 'kserve')
    expect(await readFile(join(ctx.dir, 'requirements.txt'), 'utf8')).toBe(
      'mlflow-skinny==3.17.2\nscikit-learn==1.6.1\n',
    )
    expect(await readFile(ctx.dockerfile, 'utf8')).toBe(renderDockerfile('kserve'))
    expect(await readFile(join(ctx.dir, 'server.py'), 'utf8')).toBe(SERVER_PY)
    expect((await stat(join(ctx.dir, 'install.sh'))).mode & 0o111).not.toBe(0)
  })

  test('mlserver: the requirements as given, the V2-errors runtime and the checks it shares', async () => {
    const ctx = await createBuildContext()
    await writeBuildFiles(ctx, 'mlflow==3.17.2\n', 'mlserver')
    expect(await readFile(join(ctx.dir, 'requirements.txt'), 'utf8')).toBe('mlflow==3.17.2\n')
    expect(await readFile(join(ctx.dir, 'server.py'), 'utf8')).toBe(SERVER_PY)
    expect(await readFile(join(ctx.dir, 'mlserver_runtime.py'), 'utf8')).toBe(MLSERVER_RUNTIME_PY)
  })
})

test('the embedded Python is the current src/image/python/*.py (run `npm run embed` after editing it)', async () => {
  const sources = (readSources as () => Record<string, string>)()
  expect({ SERVER_PY, MLSERVER_RUNTIME_PY }).toEqual(sources)
  expect(readFileSync('src/image/python/embedded.ts', 'utf8')).toBe(
    await (render as (s: Record<string, string>) => Promise<string>)(sources),
  )
})
