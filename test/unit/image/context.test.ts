import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createBuildContext,
  MODEL_DIR_IN_IMAGE,
  READINESS_PATH,
  renderDockerfile,
  writeBuildFiles,
} from '../../../src/image/context.js'

const lines = renderDockerfile().split('\n')
const index = (re: RegExp) => lines.findIndex((l) => re.test(l))

describe('the generated Dockerfile', () => {
  test('starts FROM the pinned base given as a build arg', () => {
    expect(lines.slice(0, 4).join('\n')).toMatch(/ARG BASE_IMAGE\nFROM \$\{BASE_IMAGE\}/)
  })

  test('installs the requirements in their own layer before the model is copied', () => {
    const copyReqs = index(/^COPY requirements.txt /)
    const pip = index(/pip install/)
    const copyModel = index(/^COPY .*model\/ /)
    expect(copyReqs).toBeGreaterThan(0)
    expect(pip).toBeGreaterThan(copyReqs)
    expect(copyModel).toBeGreaterThan(pip)
    // Nothing that varies per model version comes before the pip layer (it would break the cache).
    expect(lines.slice(0, pip).some((l) => /MODEL_NAME|LABEL/.test(l))).toBe(false)
  })

  test('resolves the requirements together with the base’s MLServer pins', () => {
    expect(renderDockerfile()).toMatch(/mlserver==" \+ v\("mlserver"\), "mlserver-mlflow==" \+ v\("mlserver-mlflow"\)/)
    expect(renderDockerfile()).toMatch(/-r \/opt\/mlflow-k8s-deploy\/requirements.txt \$runtime/)
  })

  test.each([
    ['MLSERVER_MODEL_NAME=${MODEL_NAME}'],
    ['MLSERVER_MODEL_IMPLEMENTATION=mlserver_mlflow.MLflowRuntime'],
    [`MLSERVER_MODEL_URI=${MODEL_DIR_IN_IMAGE}`],
    ['MLSERVER_HTTP_PORT=8080'],
    ['MLSERVER_PARALLEL_WORKERS=0'],
    ['EXPOSE 8080'],
    [READINESS_PATH],
    [`CMD ["mlserver", "start", "${MODEL_DIR_IN_IMAGE}"]`],
  ])('sets %s', (text) => {
    expect(renderDockerfile()).toContain(text)
  })

  test('runs as the non-root uid 1000, after the root-only install', () => {
    const users = lines.filter((l) => /^USER /.test(l))
    expect(users).toEqual(['USER root', 'USER 1000'])
    expect(index(/^USER 1000/)).toBeGreaterThan(index(/pip install/))
    expect(renderDockerfile()).toContain('COPY --chown=1000:0 model/')
  })
})

test('writeBuildFiles writes the Dockerfile and the normalised requirements', async () => {
  const ctx = await createBuildContext()
  expect(ctx.modelDir).toBe(join(ctx.dir, 'model'))
  await writeBuildFiles(ctx, 'mlflow==3.17.2\r\n# comment\r\nscikit-learn==1.6.1\r\n')
  expect(await readFile(join(ctx.dir, 'requirements.txt'), 'utf8')).toBe('mlflow==3.17.2\nscikit-learn==1.6.1\n')
  expect(await readFile(ctx.dockerfile, 'utf8')).toBe(renderDockerfile())
})
