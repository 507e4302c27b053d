import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { parseInputs, type Inputs } from '../../src/inputs.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'inputs-'))
const file = (name: string, text: string) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\n')
const TEMPLATE = file('service.yaml', 'apiVersion: serving.knative.dev/v1\nkind: Service\n')
const KUBECONFIG_PATH = file('kubeconfig', 'apiVersion: v1\nclusters: []\n')
const KUBECONFIG_CONTENT = [
  'apiVersion: v1',
  'kind: Config',
  'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]',
  'users: [{name: u, user: {token: kube-token-123}}]',
  'contexts: [{name: x, context: {cluster: c, user: u}}]',
].join('\n')

const BASE = {
  'model-uri': 'models:/wine-classifier@champion',
  'tracking-uri': 'https://mlflow.example.com/',
  'image-repository': 'ghcr.io/acme/wine',
}

function parse(inputs: Record<string, string>, env: Record<string, string> = {}) {
  const masked: string[] = []
  const result = parseInputs({ get: (n) => inputs[n] ?? '', env, mask: (s) => masked.push(s) })
  return { result, masked }
}
const ok = (inputs: Record<string, string>, env: Record<string, string> = {}): Inputs =>
  parse({ ...BASE, ...inputs }, env).result

function errorOf(inputs: Record<string, string>, env: Record<string, string> = {}): InputError {
  try {
    parse(inputs, env)
  } catch (err) {
    if (err instanceof InputError) return err
    throw err
  }
  throw new Error('expected an InputError')
}

describe('defaults', () => {
  const i = ok({})
  test.each<[string, unknown, unknown]>([
    ['action', i.action, 'deploy'],
    ['target', i.cluster.target, 'knative'],
    ['serving', i.cluster.serving, 'image'],
    ['namespace', i.cluster.namespace, 'default'],
    ['build', i.image.build, 'auto'],
    ['runtime', i.image.runtime, 'kserve'],
    ['base-image (kserve: plain Python)', i.image.baseImage, 'docker.io/library/python:3.11-slim-bookworm'],
    ['wait', i.flow.wait, true],
    ['timeout', i.flow.timeoutMs, 600_000],
    ['smoke-test', i.flow.smokeTest, true],
    ['oidc', i.mlflow.oidc, undefined],
    ['mlflow-insecure-tls', i.mlflow.insecureTls, false],
    ['name (derived from the model name)', [i.cluster.name, i.cluster.nameDerived], ['wine-classifier', true]],
    ['image-tag (derived later)', i.image.tag, undefined],
    ['env', i.cluster.env, []],
    ['labels', i.cluster.labels, {}],
    ['resources', i.cluster.resources, undefined],
    ['platforms', i.image.platforms, []],
    ['traffic-percent (routing untouched)', i.flow.trafficPercent, undefined],
    ['kubeconfig (KUBECONFIG, then in-cluster)', i.cluster.kubeconfig, undefined],
    ['take-over', i.cluster.takeOver, false],
    ['preview', i.preview, { enabled: false, prNumber: undefined, ttlMs: undefined, cleanupOlderThanMs: undefined }],
    ['comment', i.github.comment, true],
    ['environment', i.github.environment, undefined],
    ['github-token', i.github.token, undefined],
    ['build-network', i.image.network, undefined],
    ['builder (the current one)', i.image.builder, undefined],
    ["sbom and provenance (BuildKit's defaults)", i.image.attestations, undefined],
    ['compression', i.image.compression, 'gzip'],
    ['artifacts-destination', i.mlflow.artifactsDestination, undefined],
  ])('%s', (_name, actual, expected) => expect(actual).toEqual(expected))
  test('trailing slash dropped from tracking-uri', () =>
    expect(i.mlflow.trackingUri).toBe('https://mlflow.example.com'))
  test('the result is deeply frozen', () => {
    expect(Object.isFrozen(i)).toBe(true)
    expect(Object.isFrozen(i.cluster.labels)).toBe(true)
    expect(Object.isFrozen(i.model?.ref)).toBe(true)
  })
})

describe('every input is read', () => {
  const i = ok({
    action: 'render',
    'registry-uri': 'https://registry.example.com',
    'mlflow-ca-cert': CA,
    'image-tag': 'v1.2',
    'base-image': 'registry.local:5000/mlserver-base:1.7.1@sha256:' + 'a'.repeat(64),
    build: 'ALWAYS',
    platforms: 'linux/amd64, linux/arm64/v8',
    'build-args': 'PIP_INDEX_URL=https://pypi.example.com/simple\nFOO=a=b',
    'cache-from': 'type=registry,ref=ghcr.io/acme/wine:cache\n',
    'cache-to': 'type=inline',
    'build-network': 'host',
    builder: 'builder-1a2b.c_d',
    'artifacts-destination': 's3://bucket/mlartifacts/',
    'take-over': 'true',
    target: 'kserve',
    name: 'wine',
    namespace: 'models',
    'kube-context': 'prod',
    kubeconfig: KUBECONFIG_PATH,
    template: TEMPLATE,
    env: 'MLSERVER_PARALLEL_WORKERS: 2\nDEBUG: true',
    labels: 'team: ml\napp.kubernetes.io/part-of: wine',
    annotations: 'example.com/owner: "ml team | on call"',
    resources: "requests: {cpu: '1', memory: 2Gi}\nlimits: {memory: 2Gi}",
    'min-scale': '1',
    'max-scale': '3',
    wait: 'false',
    timeout: '1h30m',
    'smoke-test': 'false',
    'smoke-test-input': '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}',
    'ingress-host': 'wine.models.example.com',
    'ingress-address': '10.1.2.3:8080',
    'traffic-percent': '10',
  })
  test.each<[string, unknown, unknown]>([
    ['action', i.action, 'render'],
    ['registry-uri', i.mlflow.registryUri, 'https://registry.example.com'],
    ['mlflow-ca-cert', i.mlflow.caCertPath, CA],
    ['image-tag', i.image.tag, 'v1.2'],
    ['build', i.image.build, 'always'],
    ['platforms', i.image.platforms, ['linux/amd64', 'linux/arm64/v8']],
    ['build-args', i.image.buildArgs, { PIP_INDEX_URL: 'https://pypi.example.com/simple', FOO: 'a=b' }],
    ['cache-from', i.image.cacheFrom, ['type=registry,ref=ghcr.io/acme/wine:cache']],
    ['cache-to', i.image.cacheTo, ['type=inline']],
    ['build-network', i.image.network, 'host'],
    ['builder', i.image.builder, 'builder-1a2b.c_d'],
    ['artifacts-destination', i.mlflow.artifactsDestination, 's3://bucket/mlartifacts'],
    ['take-over', i.cluster.takeOver, true],
    ['target', i.cluster.target, 'kserve'],
    ['name', i.cluster.name, 'wine'],
    ['namespace', i.cluster.namespace, 'models'],
    ['kube-context', i.cluster.kubeContext, 'prod'],
    ['kubeconfig', i.cluster.kubeconfig, { path: KUBECONFIG_PATH }],
    ['template', i.cluster.templatePath, TEMPLATE],
    [
      'env',
      i.cluster.env,
      [
        { name: 'MLSERVER_PARALLEL_WORKERS', value: '2' },
        { name: 'DEBUG', value: 'true' },
      ],
    ],
    ['labels', i.cluster.labels, { team: 'ml', 'app.kubernetes.io/part-of': 'wine' }],
    ['annotations', i.cluster.annotations, { 'example.com/owner': 'ml team | on call' }],
    ['resources', i.cluster.resources, { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } }],
    ['min-scale', i.cluster.minScale, 1],
    ['max-scale', i.cluster.maxScale, 3],
    ['wait', i.flow.wait, false],
    ['timeout', i.flow.timeoutMs, 5_400_000],
    ['smoke-test', i.flow.smokeTest, false],
    ['smoke-test-input', i.flow.smokeTestInput?.['inputs'], [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }]],
    ['ingress-host', i.flow.ingressHost, 'wine.models.example.com'],
    ['ingress-address', i.flow.ingressAddress, 'http://10.1.2.3:8080'],
    ['traffic-percent', i.flow.trafficPercent, 10],
  ])('%s', (_name, actual, expected) => expect(actual).toEqual(expected))

  test('tag and promote-alias (knative deploy)', () => {
    const d = ok({ tag: 'candidate', 'traffic-percent': '0', 'promote-alias': 'production' })
    expect([d.flow.tag, d.flow.trafficPercent, d.flow.promoteAlias]).toEqual(['candidate', 0, 'production'])
  })
  test('env as a list of EnvVar objects, with valueFrom', () => {
    const d = ok({ env: '- {name: A, value: "1"}\n- name: TOKEN\n  valueFrom: {secretKeyRef: {name: s, key: t}}' })
    expect(d.cluster.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 't' } } },
    ])
  })
  test('build-args as a YAML map', () =>
    expect(ok({ 'build-args': 'A: 1\nB: x' }).image.buildArgs).toEqual({ A: '1', B: 'x' }))
  test('timeouts: bare seconds and ms', () => {
    expect(ok({ timeout: '90' }).flow.timeoutMs).toBe(90_000)
    expect(ok({ timeout: '1500ms' }).flow.timeoutMs).toBe(1500)
  })
  test('inline kubeconfig content is kept and its credentials masked', () => {
    const { result, masked } = parse({ ...BASE, kubeconfig: KUBECONFIG_CONTENT })
    expect(result.cluster.kubeconfig).toEqual({ content: KUBECONFIG_CONTENT })
    expect(masked).toEqual(expect.arrayContaining([KUBECONFIG_CONTENT, 'kube-token-123']))
  })
})

describe('runtime', () => {
  test.each<[Record<string, string>, string, string]>([
    [{}, 'kserve', 'docker.io/library/python:3.11-slim-bookworm'],
    [{ runtime: 'kserve' }, 'kserve', 'docker.io/library/python:3.11-slim-bookworm'],
    [{ runtime: 'MLServer' }, 'mlserver', 'docker.io/seldonio/mlserver:1.7.1'],
    [{ runtime: 'mlserver', 'base-image': 'ghcr.io/acme/mlserver:1.7.1' }, 'mlserver', 'ghcr.io/acme/mlserver:1.7.1'],
    [{ 'base-image': 'ghcr.io/acme/kserve-base:0.21.0' }, 'kserve', 'ghcr.io/acme/kserve-base:0.21.0'],
  ])('%j -> %s on %s', (given, runtime, base) => {
    const i = ok(given)
    expect([i.image.runtime, i.image.baseImage]).toEqual([runtime, base])
  })
})

describe('model URIs', () => {
  test.each<[string, object]>([
    ['models:/wine/3', { kind: 'version', name: 'wine', version: '3' }],
    ['models:/wine/003', { kind: 'version', name: 'wine', version: '3' }],
    ['models:/wine@champion', { kind: 'alias', name: 'wine', alias: 'champion' }],
    ['models:/a@b@prod', { kind: 'alias', name: 'a@b', alias: 'prod' }],
    ['models:/wine/Production', { kind: 'stage', name: 'wine', stage: 'Production' }],
    ['models:/wine/staging', { kind: 'stage', name: 'wine', stage: 'staging' }],
    ['models:/wine/latest', { kind: 'latest', name: 'wine' }],
    ['models:/wine/LATEST', { kind: 'latest', name: 'wine' }],
    ['models:/Wine.Classifier v2 ü/1', { kind: 'version', name: 'Wine.Classifier v2 ü', version: '1' }],
    [
      'models:/m-0123456789abcdef0123456789abcdef',
      { kind: 'logged-model', modelId: 'm-0123456789abcdef0123456789abcdef' },
    ],
    ['runs:/0a1b2c3d4e5f/model', { kind: 'run', runId: '0a1b2c3d4e5f', path: 'model' }],
    ['runs:/0a1b2c3d4e5f/models/clf/', { kind: 'run', runId: '0a1b2c3d4e5f', path: 'models/clf' }],
  ])('%s', (uri, expected) => {
    expect(ok({ 'model-uri': uri, name: 'svc' }).model?.ref).toMatchObject(expected)
  })

  test.each<[string, RegExp]>([
    ['wine-classifier', /not a model URI; use models:\/<name>\/<version>/],
    ['s3://bucket/model', /not a model URI/],
    ['models:/', /no model name/],
    ['models:/wine@', /empty alias/],
    ['models:/@prod', /no model name before '@'/],
    ['models:/wine/1/extra', /path inside the model/],
    ['models://profile/wine/1', /profile/],
    ['runs:/', /no run id/],
    ['runs:/abc', /no artifact path/],
    ['runs:/a b/model', /not a valid MLflow run id/],
  ])('rejects %s', (uri, message) => {
    const err = errorOf({ ...BASE, 'model-uri': uri })
    expect(err.input).toBe('model-uri')
    expect(err.message).toMatch(message)
  })
})

describe('env fallbacks', () => {
  test.each<[string, Record<string, string>, (i: Inputs) => unknown, unknown]>([
    [
      'MLFLOW_TRACKING_URI',
      { MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000' },
      (i) => i.mlflow.trackingUri,
      'http://127.0.0.1:5000',
    ],
    ['MLFLOW_REGISTRY_URI', { MLFLOW_REGISTRY_URI: 'http://reg:5000' }, (i) => i.mlflow.registryUri, 'http://reg:5000'],
    ['MLFLOW_TRACKING_TOKEN', { MLFLOW_TRACKING_TOKEN: 'tok' }, (i) => i.mlflow.token, 'tok'],
    [
      'MLFLOW_TRACKING_USERNAME/PASSWORD',
      { MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' },
      (i) => [i.mlflow.username, i.mlflow.password],
      ['u', 'p'],
    ],
    ['MLFLOW_TRACKING_SERVER_CERT_PATH', { MLFLOW_TRACKING_SERVER_CERT_PATH: CA }, (i) => i.mlflow.caCertPath, CA],
    ['MLFLOW_TRACKING_INSECURE_TLS', { MLFLOW_TRACKING_INSECURE_TLS: 'TRUE' }, (i) => i.mlflow.insecureTls, true],
    [
      'MLFLOW_TRACKING_OIDC_*',
      {
        MLFLOW_TRACKING_OIDC_ISSUER: 'https://idp.example.com/realms/ml',
        MLFLOW_TRACKING_OIDC_CLIENT_ID: 'deployer',
        MLFLOW_TRACKING_OIDC_CLIENT_SECRET: 'sec',
        MLFLOW_TRACKING_OIDC_SCOPE: 'openid',
        MLFLOW_TRACKING_OIDC_AUDIENCE: 'mlflow',
      },
      (i) => i.mlflow.oidc,
      {
        issuer: 'https://idp.example.com/realms/ml',
        clientId: 'deployer',
        clientSecret: 'sec',
        scope: 'openid',
        audience: 'mlflow',
        githubToken: 'none',
        githubAudience: undefined,
      },
    ],
  ])('%s', (_name, env, pick, expected) => {
    const inputs = { ...BASE } as Record<string, string>
    if ('MLFLOW_TRACKING_URI' in env) delete inputs['tracking-uri']
    expect(pick(parse(inputs, env).result)).toEqual(expected)
  })

  test('an input wins over its env fallback', () => {
    expect(ok({ 'mlflow-token': 'from-input' }, { MLFLOW_TRACKING_TOKEN: 'from-env' }).mlflow.token).toBe('from-input')
  })
})

describe('secrets are masked when read', () => {
  test.each<[string, Record<string, string>, Record<string, string>, string]>([
    ['mlflow-token', { 'mlflow-token': 's3cret-token' }, {}, 's3cret-token'],
    ['mlflow-password', { 'mlflow-username': 'u', 'mlflow-password': 'pw-123' }, {}, 'pw-123'],
    ['MLFLOW_TRACKING_PASSWORD', { 'mlflow-username': 'u' }, { MLFLOW_TRACKING_PASSWORD: 'env-pw' }, 'env-pw'],
    [
      'oidc-client-secret',
      { 'oidc-issuer': 'https://idp', 'oidc-client-id': 'c', 'oidc-client-secret': 'cs-1' },
      {},
      'cs-1',
    ],
  ])('%s', (_n, inputs, env, secret) => {
    expect(parse({ ...BASE, ...inputs }, env).masked).toContain(secret)
  })
  test('a secret is masked even when a later check rejects the inputs', () => {
    const masked: string[] = []
    const source = {
      get: (n: string) =>
        ({ ...BASE, 'mlflow-token': 'tok-9', 'mlflow-username': 'u', 'mlflow-password': 'pw' })[n] ?? '',
      env: {},
      mask: (s: string) => masked.push(s),
    }
    expect(() => parseInputs(source)).toThrow(/not both/)
    expect(masked).toEqual(expect.arrayContaining(['tok-9', 'pw']))
  })
  test('credentials in a URL are masked and rejected', () => {
    const { masked } = (() => {
      const m: string[] = []
      try {
        parseInputs({
          get: (n) => ({ ...BASE, 'tracking-uri': 'https://u:hunter2@mlflow' })[n] ?? '',
          env: {},
          mask: (s) => m.push(s),
        })
      } catch (err) {
        expect(String(err)).not.toContain('hunter2')
      }
      return { masked: m }
    })()
    expect(masked).toContain('hunter2')
  })
})

describe('bad values name the input and what is allowed', () => {
  test.each<[string, Record<string, string>, string, RegExp]>([
    ['missing model-uri', { 'model-uri': '' }, 'model-uri', /required/],
    ['missing tracking-uri', { 'tracking-uri': '' }, 'tracking-uri', /MLFLOW_TRACKING_URI/],
    ['tracking-uri not a URL', { 'tracking-uri': 'mlflow.example.com' }, 'tracking-uri', /not a URL/],
    ['tracking-uri wrong scheme', { 'tracking-uri': 'file:///tmp/mlruns' }, 'tracking-uri', /only http/],
    ['databricks URI', { 'tracking-uri': 'databricks' }, 'tracking-uri', /not a URL/],
    ['registry-uri scheme', { 'registry-uri': 'sqlite:///x.db' }, 'registry-uri', /only http/],
    [
      'action enum',
      { action: 'destroy' },
      'action',
      /must be `deploy`, `plan`, `delete`, `render` or `cleanup`, got "destroy"/,
    ],
    ['target enum', { target: 'knatve' }, 'target', /must be `knative` or `kserve`, got "knatve"/],
    ['serving enum', { serving: 'docker' }, 'serving', /must be `image` or `mlflow-runtime`/],
    ['build enum', { build: 'sometimes' }, 'build', /`auto`, `always` or `never`/],
    ['runtime enum', { runtime: 'triton' }, 'runtime', /must be `kserve` or `mlserver`, got "triton"/],
    [
      'oidc-github-token enum',
      { 'oidc-github-token': 'yes' },
      'oidc-github-token',
      /`none`, `bearer`, `token-exchange` or `client-assertion`/,
    ],
    ['wait boolean', { wait: 'yes' }, 'wait', /true or false, got "yes"/],
    ['smoke-test boolean', { 'smoke-test': 'maybe' }, 'smoke-test', /true or false/],
    ['insecure-tls boolean', { 'mlflow-insecure-tls': 'on' }, 'mlflow-insecure-tls', /true or false/],
    ['timeout', { timeout: 'ten minutes' }, 'timeout', /not a duration; use e.g. 90s/],
    ['timeout zero', { timeout: '0s' }, 'timeout', /between 1s and 6h/],
    ['timeout too long', { timeout: '7h' }, 'timeout', /between 1s and 6h/],
    ['min-scale', { 'min-scale': '-1' }, 'min-scale', /whole number from 0/],
    ['max-scale', { 'max-scale': '0' }, 'max-scale', /whole number from 1/],
    ['min > max', { 'min-scale': '5', 'max-scale': '2' }, 'min-scale', /greater than max-scale/],
    ['traffic-percent', { 'traffic-percent': '150' }, 'traffic-percent', /from 0 to 100/],
    ['image-repository with tag', { 'image-repository': 'ghcr.io/acme/wine:latest' }, 'image-repository', /image-tag/],
    ['image-repository upper case', { 'image-repository': 'ghcr.io/Acme/Wine' }, 'image-repository', /lower case/],
    ['image-repository missing', { 'image-repository': '' }, 'image-repository', /required/],
    ['image-tag', { 'image-tag': '-bad' }, 'image-tag', /not a valid tag/],
    ['base-image', { 'base-image': 'a b' }, 'base-image', /not an image reference/],
    ['platforms', { platforms: 'amd64' }, 'platforms', /linux\/amd64/],
    ['builder', { builder: 'my builder' }, 'builder', /not a buildx builder name/],
    ['sbom', { sbom: 'yes please' }, 'sbom', /must be true, false, or an SBOM generator image/],
    ['sbom with a comma', { sbom: 'r/scanner:1,mode=x' }, 'sbom', /an SBOM generator image such as/],
    ['provenance', { provenance: 'max' }, 'provenance', /must be `false`, `mode=min` or `mode=max`.*got "max"/],
    ['compression', { compression: 'zstd:chunked' }, 'compression', /must be `gzip` or `zstd`, got "zstd:chunked"/],
    ['build-args line', { 'build-args': 'A=1\nnope' }, 'build-args', /not KEY=VALUE/],
    ['build-args YAML', { 'build-args': '[1, 2]' }, 'build-args', /YAML map/],
    ['name', { name: 'Wine_Classifier' }, 'name', /DNS-1035/],
    ['name too long', { name: 'a'.repeat(58) }, 'name', /at most 57/],
    ['namespace', { namespace: 'Models' }, 'namespace', /DNS-1123/],
    ['kubeconfig path', { kubeconfig: '/nope/kubeconfig' }, 'kubeconfig', /does not exist/],
    ['kubeconfig content', { kubeconfig: 'foo: bar\nbaz: 1' }, 'kubeconfig', /neither a path nor kubeconfig YAML/],
    ['template path', { template: '/nope/service.yaml' }, 'template', /does not exist/],
    ['mlflow-ca-cert path', { 'mlflow-ca-cert': '/nope/ca.pem' }, 'mlflow-ca-cert', /does not exist/],
    ['env not YAML', { env: 'A: [' }, 'env', /not valid YAML/],
    ['env scalar', { env: 'just text' }, 'env', /YAML map \(NAME: value\) or a list/],
    ['env name', { env: '"1A": x' }, 'env', /not a valid environment variable name/],
    ['env nested value', { env: 'A: {b: 1}' }, 'env', /must be a string, number or boolean/],
    ['env list item', { env: '- value: x' }, 'env', /item 1 must be an EnvVar/],
    ['labels key', { labels: '"bad key": x' }, 'labels', /not a valid label key/],
    [
      'labels value',
      { labels: 'team: "ml team"' },
      'labels',
      /value of "team" is "ml team": label values are at most 63/,
    ],
    ['labels value with a newline', { labels: 'team: "ml\\nteam"' }, 'labels', /value of "team" is "ml\\nteam"/],
    ['labels comma string', { labels: 'team=ml,env=prod' }, 'labels', /YAML map/],
    ['annotations key', { annotations: '"/x": y' }, 'annotations', /not a valid annotation key/],
    ['resources section', { resources: 'cpu: 1' }, 'resources', /unknown key "cpu"/],
    ['resources quantity', { resources: 'limits: {memory: lots}' }, 'resources', /not a Kubernetes quantity/],
    ['smoke-test-input JSON', { 'smoke-test-input': '{inputs: []}' }, 'smoke-test-input', /not valid JSON/],
    ['smoke-test-input shape', { 'smoke-test-input': '{"data": [1]}' }, 'smoke-test-input', /V2 inference request/],
    ['ingress-host', { 'ingress-host': 'http://x' }, 'ingress-host', /not a host name/],
    ['ingress-address', { 'ingress-address': 'http://lb/v2' }, 'ingress-address', /no credentials, path or query/],
    ['tag', { tag: 'Candidate' }, 'tag', /not a valid traffic tag/],
    ['promote-alias reserved', { 'promote-alias': 'latest' }, 'promote-alias', /reserved/],
    ['promote-alias v1', { 'promote-alias': 'v1' }, 'promote-alias', /reserved/],
    ['promote-alias chars', { 'promote-alias': 'prod env' }, 'promote-alias', /not a valid MLflow alias/],
    ['take-over boolean', { 'take-over': 'please' }, 'take-over', /true or false/],
    ['preview boolean', { preview: 'y' }, 'preview', /true or false/],
    ['comment boolean', { comment: 'n' }, 'comment', /true or false/],
    ['pr-number', { preview: 'true', 'pr-number': 'abc' }, 'pr-number', /whole number/],
    ['preview-ttl', { preview: 'true', 'pr-number': '7', 'preview-ttl': 'a week' }, 'preview-ttl', /not a duration/],
    ['cleanup-older-than', { action: 'cleanup', 'cleanup-older-than': '-1h' }, 'cleanup-older-than', /not a duration/],
    ['environment', { environment: 'a b' }, 'environment', /not a valid environment name/],
    ['artifacts-destination', { 'artifacts-destination': 'bucket/path' }, 'artifacts-destination', /not a storage URI/],
    ['upper case', { 'image-pull-secrets': 'GHCR' }, 'image-pull-secrets', /"GHCR" is not a Secret name: lower-case/],
    [
      'space inside a name',
      { 'image-pull-secrets': 'my secret' },
      'image-pull-secrets',
      /"my secret" is not a Secret name/,
    ],
    ['leading dash', { 'image-pull-secrets': 'ok,-bad' }, 'image-pull-secrets', /"-bad" is not a Secret name/],
    [
      'too long',
      { 'image-pull-secrets': 'a'.repeat(254) },
      'image-pull-secrets',
      /the name of a Secret in the namespace, not its content/,
    ],
    [
      'service account with a slash',
      { 'service-account': 'system/sa' },
      'service-account',
      /"system\/sa" is not a ServiceAccount name/,
    ],
    [
      'service account with underscore',
      { 'service-account': 'wine_sa' },
      'service-account',
      /not a ServiceAccount name/,
    ],
    [
      'checked for delete too',
      { action: 'delete', 'service-account': 'Bad' },
      'service-account',
      /not a ServiceAccount name/,
    ],
  ])('%s', (_case, inputs, input, message) => {
    const err = errorOf({ ...BASE, ...inputs })
    expect(err.input).toBe(input)
    expect(err.message).toMatch(message)
    expect(err.message).toContain(`\`${input}\``)
    expect(err.message).not.toContain('\n')
  })
})

// A Kubernetes qualified name: an optional DNS-1123 subdomain prefix and one '/', then a name of at
// most 63 characters (apimachinery validation.IsQualifiedName).
describe('label and annotation keys are qualified names', () => {
  test.each<[string, boolean]>([
    ['team', true],
    ['app.kubernetes.io/part-of', true],
    ['acc.example/hostile', true],
    ['a/b', true],
    ['a/b/c', false],
    ['acc.example/x/y', false],
    ['/x', false],
    ['x/', false],
    ['Acc.example/x', false],
    [`${'a'.repeat(254)}/x`, false],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    ['-x', false],
    ['x_y.z-1', true],
  ])('%s → %s', (key, valid) => {
    for (const input of ['labels', 'annotations'] as const) {
      const value = JSON.stringify({ [key]: 'v' })
      if (valid) expect(Object.keys(ok({ [input]: value }).cluster[input])).toEqual([key])
      else expect(errorOf({ ...BASE, [input]: value }).message).toMatch(/is not a valid (label|annotation) key/)
    }
  })
})

describe('inputs that exclude each other are rejected up front', () => {
  test.each<[string, Record<string, string>, string, RegExp]>([
    [
      'token and basic',
      { 'mlflow-token': 't', 'mlflow-username': 'u', 'mlflow-password': 'p' },
      'mlflow-token',
      /not both/,
    ],
    ['username without password', { 'mlflow-username': 'u' }, 'mlflow-password', /required with mlflow-username/],
    ['password without username', { 'mlflow-password': 'p' }, 'mlflow-username', /required with mlflow-password/],
    [
      'CA and insecure',
      { 'mlflow-ca-cert': CA, 'mlflow-insecure-tls': 'true' },
      'mlflow-insecure-tls',
      /together with mlflow-ca-cert/,
    ],
    [
      'OIDC and token',
      { 'oidc-issuer': 'https://idp', 'oidc-client-id': 'c', 'oidc-client-secret': 's', 'mlflow-token': 't' },
      'oidc-issuer',
      /use one/,
    ],
    ['OIDC without issuer', { 'oidc-client-id': 'c', 'oidc-client-secret': 's' }, 'oidc-issuer', /required/],
    [
      'OIDC without client id',
      { 'oidc-issuer': 'https://idp', 'oidc-client-secret': 's' },
      'oidc-client-id',
      /required/,
    ],
    [
      'OIDC without secret',
      { 'oidc-issuer': 'https://idp', 'oidc-client-id': 'c' },
      'oidc-client-secret',
      /client-credentials/,
    ],
    ['oidc-scope alone', { 'oidc-scope': 'openid' }, 'oidc-scope', /no effect/],
    [
      'github bearer with issuer',
      { 'oidc-github-token': 'bearer', 'oidc-issuer': 'https://idp' },
      'oidc-github-token',
      /as is/,
    ],
    ['github exchange without issuer', { 'oidc-github-token': 'token-exchange' }, 'oidc-issuer', /required/],
    [
      'github client-assertion without client',
      { 'oidc-github-token': 'client-assertion', 'oidc-issuer': 'https://idp' },
      'oidc-client-id',
      /required/,
    ],
    [
      'github client-assertion with secret',
      {
        'oidc-github-token': 'client-assertion',
        'oidc-issuer': 'https://idp',
        'oidc-client-id': 'c',
        'oidc-client-secret': 's',
      },
      'oidc-client-secret',
      /remove/,
    ],
    ['mlflow-runtime with knative', { serving: 'mlflow-runtime', 'image-repository': '' }, 'serving', /target: kserve/],
    [
      'mlflow-runtime with image-repository',
      { serving: 'mlflow-runtime', target: 'kserve' },
      'image-repository',
      /no effect/,
    ],
    [
      'mlflow-runtime with runtime',
      { serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', runtime: 'mlserver' },
      'runtime',
      /builds no image/,
    ],
    [
      'mlflow-runtime with build always',
      { serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', build: 'always' },
      'build',
      /builds no image/,
    ],
    [
      'mlflow-runtime with sbom',
      { serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', sbom: 'true' },
      'sbom',
      /builds no image/,
    ],
    [
      'mlflow-runtime with provenance',
      { serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', provenance: 'mode=max' },
      'provenance',
      /builds no image/,
    ],
    [
      'mlflow-runtime with compression',
      { serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', compression: 'zstd' },
      'compression',
      /builds no image/,
    ],
    ['smoke test without wait', { wait: 'false' }, 'smoke-test', /needs wait: true/],
    ['tag with kserve', { target: 'kserve', tag: 'preview' }, 'tag', /Knative-only/],
    [
      'promote-alias with runs:/',
      { 'model-uri': 'runs:/abc/model', name: 'svc', 'promote-alias': 'prod' },
      'promote-alias',
      /registered model/,
    ],
    [
      'promote-alias with render',
      { action: 'render', 'promote-alias': 'prod' },
      'promote-alias',
      /only applies to action: deploy/,
    ],
    [
      'promote-alias without the smoke test',
      { 'promote-alias': 'prod', 'smoke-test': 'false' },
      'promote-alias',
      /needs wait: true and smoke-test: true \(got wait: true, smoke-test: false\)/,
    ],
    [
      'promote-alias without waiting',
      { 'promote-alias': 'prod', wait: 'false', 'smoke-test': 'false' },
      'promote-alias',
      /needs wait: true and smoke-test: true \(got wait: false, smoke-test: false\)/,
    ],
    ['runs:/ without name', { 'model-uri': 'runs:/abc/model' }, 'name', /no registered model name/],
  ])('%s', (_case, inputs, input, message) => {
    const err = errorOf({ ...BASE, ...inputs })
    expect(err.input).toBe(input)
    expect(err.message).toMatch(message)
  })

  test('preview without a PR number outside a PR event', () => {
    const err = errorOf({ ...BASE, preview: 'true' })
    expect([err.input, err.message]).toEqual(['pr-number', expect.stringMatching(/outside a pull_request event/)])
  })
  test('pr-number without preview', () => expect(errorOf({ ...BASE, 'pr-number': '3' }).input).toBe('pr-number'))
  test('preview-ttl without preview', () => expect(errorOf({ ...BASE, 'preview-ttl': '1h' }).input).toBe('preview-ttl'))
  test('cleanup-older-than outside cleanup', () => {
    expect(errorOf({ ...BASE, 'cleanup-older-than': '24h' }).input).toBe('cleanup-older-than')
  })
  test('unset optional inputs are undefined, so defaults downstream apply (the issuer as GitHub audience)', () => {
    const o = ok({ 'oidc-github-token': 'token-exchange', 'oidc-issuer': 'https://idp' }).mlflow.oidc
    expect([o?.clientId, o?.scope, o?.audience, o?.githubAudience]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ])
    expect(ok({}).mlflow.username).toBeUndefined()
  })
  test('valid OIDC modes', () => {
    expect(ok({ 'oidc-github-token': 'bearer', 'oidc-github-audience': 'mlflow' }).mlflow.oidc?.githubToken).toBe(
      'bearer',
    )
    expect(ok({ 'oidc-github-token': 'token-exchange', 'oidc-issuer': 'https://idp' }).mlflow.oidc?.issuer).toBe(
      'https://idp',
    )
    expect(
      ok({ 'oidc-github-token': 'client-assertion', 'oidc-issuer': 'https://idp', 'oidc-client-id': 'c' }).mlflow.oidc
        ?.clientId,
    ).toBe('c')
  })
  test('delete needs neither tracking-uri nor image-repository', () => {
    const i = parse({ 'model-uri': 'models:/wine/1', action: 'delete' }).result
    expect([i.action, i.cluster.name]).toEqual(['delete', 'wine'])
  })
  test('mlflow-runtime with kserve needs no image-repository', () => {
    expect(ok({ serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' }).cluster.serving).toBe(
      'mlflow-runtime',
    )
  })
})

describe('pull-request previews', () => {
  const event = file('event.json', JSON.stringify({ action: 'synchronize', number: 42, pull_request: { number: 42 } }))
  test('the PR number comes from the event; the name and environment get its suffix', () => {
    const i = ok({ preview: 'true', 'preview-ttl': '72h', github_token: '' }, { GITHUB_EVENT_PATH: event })
    expect(i.preview).toEqual({ enabled: true, prNumber: 42, ttlMs: 72 * 3_600_000, cleanupOlderThanMs: undefined })
    expect(i.cluster.name).toBe('wine-classifier-pr-42')
    expect(i.github.environment).toBe('preview-pr-42')
  })
  test('an explicit pr-number and name', () => {
    const i = ok({ preview: 'true', 'pr-number': '7', name: 'wine' })
    expect(i.cluster.name).toBe('wine-pr-7')
  })
  test('a given name too long once suffixed', () => {
    const err = errorOf({ ...BASE, preview: 'true', 'pr-number': '12345', name: 'a'.repeat(55) })
    expect(err.message).toMatch(/preview suffix -pr-12345/)
  })
  test('the github token is masked', () => {
    expect(parse({ ...BASE, 'github-token': 'ghs_abc' }).masked).toContain('ghs_abc')
  })
  test('cleanup needs no model, tracking server or image', () => {
    const i = parse({ action: 'cleanup', 'cleanup-older-than': '168h', namespace: 'previews' }).result
    expect([i.action, i.model, i.cluster.name, i.preview.cleanupOlderThanMs]).toEqual([
      'cleanup',
      undefined,
      '',
      168 * 3_600_000,
    ])
  })
})

describe('image-pull-secrets and service-account', () => {
  test.each<[string, Record<string, string>, readonly string[], string | undefined]>([
    ['unset', {}, [], undefined],
    ['one of each', { 'image-pull-secrets': 'ghcr', 'service-account': 'wine-runner' }, ['ghcr'], 'wine-runner'],
    [
      'comma-separated, spaces trimmed',
      { 'image-pull-secrets': 'ghcr, ecr-pull ,quay' },
      ['ghcr', 'ecr-pull', 'quay'],
      undefined,
    ],
    [
      'newline-separated, blank lines dropped',
      { 'image-pull-secrets': 'ghcr\n\necr.pull\n' },
      ['ghcr', 'ecr.pull'],
      undefined,
    ],
    ['duplicates once, in the order given', { 'image-pull-secrets': 'b,a,b\na' }, ['b', 'a'], undefined],
    ['dotted service account', { 'service-account': 'sa.models.v2' }, [], 'sa.models.v2'],
    ['plan takes them', { action: 'plan', 'image-pull-secrets': 'ghcr', 'service-account': 'sa' }, ['ghcr'], 'sa'],
    ['render takes them', { action: 'render', 'image-pull-secrets': 'ghcr', 'service-account': 'sa' }, ['ghcr'], 'sa'],
    [
      'kserve mlflow-runtime takes them (the predictor is a pod spec)',
      {
        target: 'kserve',
        serving: 'mlflow-runtime',
        'image-repository': '',
        'image-pull-secrets': 'r',
        'service-account': 's3-reader',
      },
      ['r'],
      's3-reader',
    ],
    [
      'delete ignores them (a shared `with:`)',
      { action: 'delete', 'image-pull-secrets': 'ghcr', 'service-account': 'sa' },
      [],
      undefined,
    ],
    [
      'cleanup ignores them',
      { action: 'cleanup', 'model-uri': '', 'image-pull-secrets': 'ghcr', 'service-account': 'sa' },
      [],
      undefined,
    ],
  ])('%s', (_case, inputs, secrets, account) => {
    const i = ok(inputs)
    expect(i.cluster.imagePullSecrets).toEqual(secrets)
    expect(i.cluster.serviceAccount).toBe(account)
  })

  test('credentials pasted instead of a name are not echoed', () => {
    const config = '{"auths":{"ghcr.io":{"auth":"dXNlcjpzM2NyZXQ="}}}'
    for (const value of [config, 'user:s3cret']) {
      const err = errorOf({ ...BASE, 'image-pull-secrets': value })
      expect(err.message).toMatch(/takes the name of a Secret in the namespace, not its content/)
      expect(err.message).not.toContain('s3cret')
      expect(err.message).not.toContain('dXNlcjpzM2NyZXQ=')
    }
  })
})

// The runner passes every action.yml default as INPUT_<NAME> when the workflow omits the input;
// the CLI and these tests pass nothing. Both must parse to the same inputs.
describe("the runner's defaults change nothing", () => {
  const action = load(readFileSync(join(import.meta.dirname, '../../action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: unknown }>
  }
  /** What the runner passes for `inputs`: each omitted input with a literal default gets it. */
  const asRunner = (inputs: Record<string, string>) => {
    const filled = { ...inputs }
    for (const [name, input] of Object.entries(action.inputs)) {
      const value = input.default === undefined ? '' : String(input.default)
      // `${{ github.token }}` is evaluated by the runner into a token no test has.
      if (!(name in filled) && value && !value.includes('${{')) filled[name] = value
    }
    return filled
  }

  test.each<[string, Record<string, string>, Record<string, string>]>([
    ['a plain deploy', BASE, {}],
    ['MLflow runtime on KServe', { ...BASE, serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' }, {}],
    ['mlserver runtime', { ...BASE, runtime: 'mlserver' }, {}],
    ['a preview', { ...BASE, preview: 'true', 'pr-number': '7', 'preview-ttl': '72h' }, {}],
    ['cleanup', { action: 'cleanup', 'cleanup-older-than': '168h' }, {}],
    ['render without wait or smoke test', { ...BASE, action: 'render', wait: 'false', 'smoke-test': 'false' }, {}],
    [
      'OIDC client credentials',
      {
        ...BASE,
        'oidc-issuer': 'https://idp.example.com',
        'oidc-client-id': 'deployer',
        'oidc-client-secret': 'sec',
      },
      {},
    ],
    [
      'env fallbacks',
      { 'model-uri': BASE['model-uri'], 'image-repository': BASE['image-repository'] },
      { MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000', MLFLOW_TRACKING_INSECURE_TLS: 'true' },
    ],
  ])('%s', (_case, inputs, env) => {
    expect(parse(asRunner(inputs), env).result).toEqual(parse(inputs, env).result)
  })

  test('every input of action.yml is read, and only those', () => {
    const asked = new Set<string>()
    parseInputs({ get: (n) => (asked.add(n), (BASE as Record<string, string>)[n] ?? ''), env: {}, mask: () => {} })
    expect([...asked].sort()).toEqual(Object.keys(action.inputs).sort())
  })
})

describe('model-cache', () => {
  const SERVICE = { ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'https://results.example/' }
  test.each([
    [{}, {}, 'auto'],
    [{ 'model-cache': 'off' }, {}, 'off'],
    [{ 'model-cache': 'github' }, SERVICE, 'github'],
  ])('%j with %j: %s', (inputs, env, mode) => expect(ok(inputs, env).modelCache).toBe(mode))

  test('github outside GitHub Actions names the input and the fix', () => {
    const err = errorOf({ ...BASE, 'model-cache': 'github' })
    expect(err.input).toBe('model-cache')
    expect(err.message).toMatch(/`model-cache`: `github` needs GitHub's cache service.*use `auto`/)
  })

  test('only a deploy downloads, so only a deploy is refused', () => {
    expect(ok({ 'model-cache': 'runner', action: 'render' }).modelCache).toBe('runner')
  })

  test('an unknown mode lists the allowed ones', () => {
    expect(errorOf({ ...BASE, 'model-cache': 'disk' }).message).toMatch(/auto.*github.*runner.*off/)
  })
})

describe('signing: sign, signing-key, verify-signature', () => {
  const PRIVATE =
    '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nkeyline-secret\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----'
  const PUBLIC = '-----BEGIN PUBLIC KEY-----\npubline\n-----END PUBLIC KEY-----'
  const PUB_PATH = file('cosign.pub', PUBLIC)
  const GH = 'https://token.actions.githubusercontent.com'
  const ON_GITHUB = { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://pipelines.example/token' }

  test('neither by default', () => {
    expect(parse(BASE).result.signing).toEqual({ sign: undefined, verify: undefined })
  })

  test.each<[string, Record<string, string>, Record<string, string>, unknown]>([
    [
      'sign with a key and its password',
      { sign: 'true', 'signing-key': PRIVATE },
      { COSIGN_PASSWORD: 'pw' },
      {
        sign: { kind: 'key', key: { pem: `${PRIVATE}\n` }, password: 'pw' },
        verify: undefined,
      },
    ],
    [
      'keyless on GitHub with id-token: write',
      { sign: 'true' },
      ON_GITHUB,
      { sign: { kind: 'keyless' }, verify: undefined },
    ],
    [
      'keyless outside a deploy needs no token yet',
      { sign: 'true', action: 'plan' },
      {},
      { sign: { kind: 'keyless' }, verify: undefined },
    ],
    [
      'verify with a public key path',
      { 'verify-signature': PUB_PATH },
      {},
      {
        sign: undefined,
        verify: { kind: 'key', key: { path: PUB_PATH } },
      },
    ],
    [
      'verify keyless',
      { 'verify-signature': `keyless:^https://github.com/acme/@${GH}` },
      {},
      {
        sign: undefined,
        verify: { kind: 'keyless', identityRegexp: '^https://github.com/acme/', issuer: GH },
      },
    ],
  ])('%s', (_, inputs, env, expected) => {
    expect(parse({ ...BASE, ...inputs }, env).result.signing).toEqual(expected)
  })

  test.each<[string, Record<string, string>, Record<string, string>, string, string]>([
    ['signing-key without sign', { 'signing-key': PRIVATE }, {}, 'signing-key', 'only applies with sign: true'],
    ['keyless without the OIDC token', { sign: 'true' }, {}, 'sign', 'permissions: id-token: write'],
    [
      'sign with mlflow-runtime',
      { sign: 'true', 'signing-key': PRIVATE, serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' },
      {},
      'sign',
      'builds no image',
    ],
    [
      'verify with mlflow-runtime',
      { 'verify-signature': PUB_PATH, serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' },
      {},
      'verify-signature',
      'builds no image',
    ],
    ['a public key as signing-key', { sign: 'true', 'signing-key': PUBLIC }, {}, 'signing-key', 'holds a public key'],
    [
      'a private key as verify-signature',
      { 'verify-signature': PRIVATE },
      {},
      'verify-signature',
      'holds a private key',
    ],
    ['a missing key file', { 'verify-signature': '/nonexistent.pub' }, {}, 'verify-signature', 'does not exist'],
    [
      'a bad keyless value',
      { 'verify-signature': 'keyless:acme' },
      {},
      'verify-signature',
      'keyless:<identity-regexp>@<issuer-url>',
    ],
    ['sign not a boolean', { sign: 'yes' }, {}, 'sign', 'must be true or false'],
  ])('refused: %s', (_, inputs, env, input, message) => {
    const err = errorOf({ ...BASE, ...inputs }, env)
    expect(err.input).toBe(input)
    expect(err.message).toContain(message)
    expect(err.message).not.toContain('keyline-secret')
  })

  test('the key, each of its lines and COSIGN_PASSWORD are masked; a private key in verify-signature too', () => {
    const { masked } = parse({ ...BASE, sign: 'true', 'signing-key': PRIVATE }, { COSIGN_PASSWORD: 'pw-9' })
    expect(masked).toEqual(expect.arrayContaining([PRIVATE, 'keyline-secret', 'pw-9']))
    const m: string[] = []
    expect(() =>
      parseInputs({ get: (n) => ({ ...BASE, 'verify-signature': PRIVATE })[n] ?? '', env: {}, mask: (s) => m.push(s) }),
    ).toThrow(InputError)
    expect(m).toContain(PRIVATE)
  })
})

test.each([
  ['gzip', 'gzip'],
  ['ZSTD', 'zstd'],
])('compression %s', (value, compression) => {
  expect(ok({ compression: value }).image.compression).toBe(compression)
})

test('compression: gzip, the default, is no conflict with serving: mlflow-runtime (the runner passes defaults)', () => {
  const i = ok({ serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '', compression: 'gzip' })
  expect(i.image.compression).toBe('gzip')
})

describe('sbom and provenance: the attestations asked of BuildKit', () => {
  test.each<[Record<string, string>, unknown]>([
    [{}, undefined],
    [{ sbom: 'false', provenance: '' }, undefined],
    [{ sbom: 'TRUE' }, { sbom: true }],
    [{ sbom: 'ghcr.io/acme/syft-scanner:1' }, { sbom: 'ghcr.io/acme/syft-scanner:1' }],
    [
      { sbom: '127.0.0.1:5001/sbom-scanner@sha256:' + 'a'.repeat(64) },
      { sbom: '127.0.0.1:5001/sbom-scanner@sha256:' + 'a'.repeat(64) },
    ],
    [{ provenance: 'false' }, { provenance: 'false' }],
    [{ provenance: 'Mode=Max' }, { provenance: 'mode=max' }],
    [
      { sbom: 'true', provenance: 'mode=min' },
      { sbom: true, provenance: 'mode=min' },
    ],
  ])('%j', (inputs, attestations) => {
    expect(ok(inputs).image.attestations).toEqual(attestations)
  })
})
