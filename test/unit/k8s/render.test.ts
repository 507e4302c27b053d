import { renderOptions } from '../../support/fixtures.js'
import { crdSchema, schemaProblems } from '../../support/crd-schema.js'
import { dump } from 'js-yaml'
import {
  parseTemplate,
  renderServingManifest,
  substitute,
  type RenderOptions,
  type RenderValues,
} from '../../../src/k8s/render.js'

const DIGEST = 'sha256:' + 'ab'.repeat(32)
const VALUES: RenderValues = {
  name: 'wine',
  namespace: 'models',
  modelUri: 'models:/wine-classifier@champion',
  modelName: 'wine-classifier',
  modelVersion: '2',
  runId: 'r123',
  image: `127.0.0.1:5001/wine@${DIGEST}`,
  digest: DIGEST,
  storageUri: 'file:///var/mlflow/artifacts/1/models/m-1/artifacts',
  gitSha: 'abc123',
  workflowRunUrl: 'https://github.com/acme/wine/actions/runs/7',
}
const OPTIONS: RenderOptions = renderOptions()
const render = (o: Partial<RenderOptions> = {}, v: Partial<RenderValues> = {}, template?: string) =>
  renderServingManifest(
    { ...VALUES, ...v },
    { ...OPTIONS, ...o },
    template ? parseTemplate(template, 't.yaml') : undefined,
  )

type Any = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('built-in shapes', () => {
  test('knative service', () => {
    const m = render({ minScale: 1, maxScale: 3, resources: { requests: { cpu: '1' }, limits: undefined } }) as Any
    expect([m.apiVersion, m.kind, m.metadata.name, m.metadata.namespace]).toEqual([
      'serving.knative.dev/v1',
      'Service',
      'wine',
      'models',
    ])
    expect(m.metadata.labels['app.kubernetes.io/managed-by']).toBe('mlflow-k8s-deploy')
    expect(m.metadata.annotations).toMatchObject({
      'mlflow-k8s-deploy/model-uri': 'models:/wine-classifier@champion',
      'mlflow-k8s-deploy/model-version': '2',
      'mlflow-k8s-deploy/run-id': 'r123',
      'mlflow-k8s-deploy/image-digest': DIGEST,
      'mlflow-k8s-deploy/git-sha': 'abc123',
      'mlflow-k8s-deploy/workflow-run': 'https://github.com/acme/wine/actions/runs/7',
    })
    const tmpl = m.spec.template
    expect(tmpl.metadata.annotations['autoscaling.knative.dev/min-scale']).toBe('1')
    expect(tmpl.metadata.annotations['autoscaling.knative.dev/max-scale']).toBe('3')
    // Provenance of the run stays off the revision template: a re-run makes no new revision.
    expect(tmpl.metadata.annotations['mlflow-k8s-deploy/git-sha']).toBeUndefined()
    const [c] = tmpl.spec.containers
    expect(c.image).toBe(VALUES.image)
    expect(c.ports).toEqual([{ containerPort: 8080, name: 'http1' }])
    expect(c.env).toEqual([{ name: 'MLSERVER_MODEL_NAME', value: 'wine' }])
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/v2/models/wine/ready' } })
    expect(c.resources).toEqual({ requests: { cpu: '1' } })
  })

  test('kserve custom container', () => {
    const m = render({ shape: 'kserve-container', minScale: 0, maxScale: 2 }) as Any
    expect([m.apiVersion, m.kind]).toEqual(['serving.kserve.io/v1beta1', 'InferenceService'])
    expect(m.spec.predictor.minReplicas).toBe(0)
    expect(m.spec.predictor.maxReplicas).toBe(2)
    const [c] = m.spec.predictor.containers
    expect(c.name).toBe('kserve-container')
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/v2/models/wine/ready', port: 8080 } })
    expect(c.env).toEqual([
      { name: 'MLSERVER_MODEL_NAME', value: 'wine' },
      { name: 'PROTOCOL', value: 'v2' },
    ])
  })

  test('kserve MLflow runtime: storageUri and protocol v2, no image', () => {
    const m = render(
      { shape: 'kserve-mlflow', env: [{ name: 'MLSERVER_PARALLEL_WORKERS', value: '1' }] },
      { image: undefined },
    ) as Any
    expect(m.spec.predictor.model).toEqual({
      modelFormat: { name: 'mlflow' },
      protocolVersion: 'v2',
      storageUri: VALUES.storageUri,
      env: [{ name: 'MLSERVER_PARALLEL_WORKERS', value: '1' }],
    })
    expect(m.spec.predictor.containers).toBeUndefined()
  })

  test('user env, labels and annotations; user env replaces a default of the same name', () => {
    const m = render({
      env: [
        { name: 'MLSERVER_MODEL_NAME', value: 'custom' },
        { name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
      ],
      labels: { team: 'ml' },
      annotations: { 'example.com/x': 'y' },
    }) as Any
    expect(m.spec.template.spec.containers[0].env).toEqual([
      { name: 'MLSERVER_MODEL_NAME', value: 'custom' },
      { name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
    ])
    expect(m.metadata.labels).toEqual({
      team: 'ml',
      'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy',
      'app.kubernetes.io/name': 'wine',
    })
    expect(m.metadata.annotations['example.com/x']).toBe('y')
  })
})

describe('user templates', () => {
  const MLFLOW_KNATIVE_STYLE = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: $name
  namespace: $namespace
spec:
  template:
    metadata:
      annotations:
        example.com/model: "\${model_name} v\${model_version} ($$5 budget)"
    spec:
      containerConcurrency: 4
      containers:
        - image: $image
          env:
            - {name: RUN, value: $run_id}
`
  test('mlflow-knative variables and more are replaced; the rest of the template is kept', () => {
    const m = render({}, {}, MLFLOW_KNATIVE_STYLE) as Any
    expect(m.metadata.name).toBe('wine')
    const tmpl = m.spec.template
    expect(tmpl.metadata.annotations['example.com/model']).toBe('wine-classifier v2 ($5 budget)')
    expect(tmpl.spec.containerConcurrency).toBe(4)
    expect(tmpl.spec.containers[0].image).toBe(VALUES.image)
    expect(tmpl.spec.containers[0].env).toEqual([
      { name: 'RUN', value: 'r123' },
      { name: 'MLSERVER_MODEL_NAME', value: 'wine' },
    ])
  })

  test('a value cannot inject fields or documents', () => {
    const evil = 'x\n  hostNetwork: true\n---\nkind: Secret'
    const m = render({}, { modelName: evil }, MLFLOW_KNATIVE_STYLE) as Any
    expect(m.spec.template.metadata.annotations['example.com/model']).toBe(`${evil} v2 ($5 budget)`)
    expect(m.spec.template.spec.hostNetwork).toBeUndefined()
    // And the YAML written out round-trips to the same single object.
    expect(dump(m).split(/^---/m)).toHaveLength(1)
  })

  test('unknown variables are left alone', () => {
    expect(substitute({ a: '$HOME and ${nope}' }, { name: 'x' })).toEqual({ a: '$HOME and ${nope}' })
  })

  test.each<[string, string, RegExp]>([
    ['not YAML', 'kind: [', /not valid YAML/],
    ['several objects', 'kind: Service\n---\nkind: Service\n', /holds 2 documents/],
    ['empty', '', /holds 0 documents/],
    ['a scalar', 'just text', /not a Kubernetes object/],
  ])('rejects a template that is %s', (_c, text, message) => {
    expect(() => parseTemplate(text, 't.yaml')).toThrow(message)
  })

  test.each<[string, Partial<RenderOptions>, string, RegExp]>([
    [
      'a Deployment for knative',
      {},
      'apiVersion: apps/v1\nkind: Deployment\n',
      /the template is a apps\/v1 Deployment, but target knative needs a serving.knative.dev\/v1 Service/,
    ],
    [
      'a Knative Service for kserve',
      { shape: 'kserve-container' },
      'apiVersion: serving.knative.dev/v1\nkind: Service\n',
      /target kserve needs a serving.kserve.io\/v1beta1 InferenceService/,
    ],
    [
      'two containers',
      {},
      'apiVersion: serving.knative.dev/v1\nkind: Service\nspec: {template: {spec: {containers: [{}, {}]}}}',
      /exactly one container/,
    ],
    ['spec not a map', {}, 'apiVersion: serving.knative.dev/v1\nkind: Service\nspec: [1]', /spec must be a map/],
  ])('rejects %s', (_c, o, text, message) => {
    expect(() => render(o, {}, text)).toThrow(message)
  })
})

describe('image pull secrets and service account', () => {
  const KNATIVE = crdSchema('knative-service.yaml', 'Service', 'v1')
  const KSERVE = crdSchema('kserve-isvc-full.yaml', 'InferenceService', 'v1beta1')
  const identity = { imagePullSecrets: ['ghcr', 'ecr'], serviceAccount: 'wine-runner' }

  test.each<[string, Partial<RenderOptions>, (m: Any) => Any, object]>([
    ['knative: on the revision template', { shape: 'knative' }, (m) => m.spec.template.spec, KNATIVE],
    ['kserve custom container: on the predictor', { shape: 'kserve-container' }, (m) => m.spec.predictor, KSERVE],
    ['kserve MLflow runtime: on the predictor', { shape: 'kserve-mlflow' }, (m) => m.spec.predictor, KSERVE],
  ])('%s, and the object fits the CRD schema', (_case, o, podSpec, schema) => {
    const m = render({ ...o, ...identity }) as Any
    expect(podSpec(m).imagePullSecrets).toEqual([{ name: 'ghcr' }, { name: 'ecr' }])
    expect(podSpec(m).serviceAccountName).toBe('wine-runner')
    expect(schemaProblems(schema, m)).toEqual([])
  })

  test('unset: no fields at all (nothing to take over from other field managers)', () => {
    for (const shape of ['knative', 'kserve-container', 'kserve-mlflow'] as const) {
      const m = render({ shape, imagePullSecrets: [], serviceAccount: undefined }) as Any
      const spec = shape === 'knative' ? m.spec.template.spec : m.spec.predictor
      expect(spec).not.toHaveProperty('imagePullSecrets')
      expect(spec).not.toHaveProperty('serviceAccountName')
    }
  })

  const TEMPLATE = `
apiVersion: serving.knative.dev/v1
kind: Service
spec:
  template:
    spec:
      serviceAccountName: from-template
      imagePullSecrets: [{name: ecr}, {name: mirror}]
      containers: [{image: $image}]
`
  test("with a template: the template's secrets stay, ours are added once; our service account wins", () => {
    const m = render(identity, {}, TEMPLATE) as Any
    expect(m.spec.template.spec.imagePullSecrets).toEqual([{ name: 'ecr' }, { name: 'mirror' }, { name: 'ghcr' }])
    expect(m.spec.template.spec.serviceAccountName).toBe('wine-runner')
    expect(schemaProblems(KNATIVE, m)).toEqual([])
  })

  test("with a template and no inputs: the template's own are left as written", () => {
    const m = render({}, {}, TEMPLATE) as Any
    expect(m.spec.template.spec.imagePullSecrets).toEqual([{ name: 'ecr' }, { name: 'mirror' }])
    expect(m.spec.template.spec.serviceAccountName).toBe('from-template')
  })

  test('a kserve template listing a secret twice: each name once', () => {
    const t = `apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nspec: {predictor: {imagePullSecrets: [{name: ghcr}, {name: ghcr}]}}`
    const m = render({ shape: 'kserve-container', imagePullSecrets: ['ghcr'] }, {}, t) as Any
    expect(m.spec.predictor.imagePullSecrets).toEqual([{ name: 'ghcr' }])
  })

  test('a template whose imagePullSecrets is not a list of names is refused', () => {
    const t = `apiVersion: serving.knative.dev/v1\nkind: Service\nspec: {template: {spec: {imagePullSecrets: [ghcr]}}}`
    expect(() => render(identity, {}, t)).toThrow(
      'template field spec.template.spec.imagePullSecrets must be a list of {name: <secret>}',
    )
  })

  test('the schema check itself catches what the apiserver refuses', () => {
    const m = render(identity) as Any
    m.spec.template.spec.imagePullSecret = [{ name: 'typo' }]
    m.spec.template.spec.imagePullSecrets.push({ name: 'ghcr' })
    expect(schemaProblems(KNATIVE, m)).toEqual([
      '.spec.template.spec.imagePullSecrets: duplicate entries',
      '.spec.template.spec.imagePullSecret: field not declared in schema',
    ])
  })
})
