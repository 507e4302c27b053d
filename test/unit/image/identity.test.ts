import {
  canonicalJson,
  computeIdentity,
  decideCache,
  defaultTag,
  IDENTITY_LABEL,
  identityLabels,
  normalizeRequirements,
  type CacheRuleInput,
  type IdentityInput,
} from '../../../src/image/identity.js'
import { cacheInput as input, DIGEST as DIG, IDENTITY as I } from './cache-input.js'
import type { Attestations } from '../../../src/image/buildx.js'

const BASE: IdentityInput = {
  model: {
    name: 'wine-classifier',
    version: '2',
    runId: 'r1',
    artifacts: [
      { path: 'MLmodel', size: 900 },
      { path: 'model.pkl', size: 12345 },
      { path: 'requirements.txt', size: 80 },
    ],
    mlmodelSha256: 'f'.repeat(64),
    requirements: 'mlflow==3.17.2\nscikit-learn==1.6.1\n',
  },
  base: { ref: '127.0.0.1:5001/mlserver-base:1.7.1-py3.11', digest: 'sha256:' + 'b'.repeat(64) },
  runtime: { name: 'mlserver', version: '1.7.1' },
  generator: { version: '0.1.0', template: '1' },
  build: { platforms: [], args: {} },
}
const id = (patch: (i: IdentityInput) => IdentityInput = (i) => i) => computeIdentity(patch(BASE))

describe('identity', () => {
  test('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: undefined, w: null }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[2,{"w":null,"y":1}]},"b":1}',
    )
  })

  test('same model, same identity, whatever the listing order or requirement formatting', () => {
    const a = id()
    const b = id((i) => ({
      ...i,
      model: {
        ...i.model,
        artifacts: [...i.model.artifacts].reverse(),
        requirements: '# pinned\r\nmlflow==3.17.2   \r\n\r\nscikit-learn==1.6.1  # sklearn\r\n',
      },
    }))
    expect(b.digest).toBe(a.digest)
    expect(a.digest).toMatch(/^[a-f0-9]{64}$/)
  })

  test.each<[string, (i: IdentityInput) => IdentityInput]>([
    ['version', (i) => ({ ...i, model: { ...i.model, version: '3' } })],
    ['name', (i) => ({ ...i, model: { ...i.model, name: 'other' } })],
    ['run id', (i) => ({ ...i, model: { ...i.model, runId: 'r2' } })],
    ['artifact size', (i) => ({ ...i, model: { ...i.model, artifacts: [{ path: 'MLmodel', size: 901 }] } })],
    ['MLmodel hash', (i) => ({ ...i, model: { ...i.model, mlmodelSha256: 'e'.repeat(64) } })],
    ['requirements', (i) => ({ ...i, model: { ...i.model, requirements: 'scikit-learn==1.5.0' } })],
    ['base digest', (i) => ({ ...i, base: { ...i.base, digest: 'sha256:' + 'c'.repeat(64) } })],
    ['runtime', (i) => ({ ...i, runtime: { name: 'mlserver', version: '1.7.2' } })],
    ['runtime kind', (i) => ({ ...i, runtime: { name: 'kserve', version: '1.7.1' } })],
    ['generator version', (i) => ({ ...i, generator: { version: '0.2.0', template: '1' } })],
    ['template version', (i) => ({ ...i, generator: { version: '0.1.0', template: '2' } })],
    ['platforms', (i) => ({ ...i, build: { platforms: ['linux/arm64'], args: {} } })],
    ['build args', (i) => ({ ...i, build: { platforms: [], args: { PIP_INDEX_URL: 'https://pypi.acme' } } })],
    ['sbom', (i) => ({ ...i, build: { ...i.build, attestations: { sbom: true } } })],
    ['provenance', (i) => ({ ...i, build: { ...i.build, attestations: { provenance: 'mode=max' } } })],
  ])('a different %s is a different identity and tag', (_what, patch) => {
    expect(id(patch).digest).not.toBe(id().digest)
    expect(defaultTag(id(patch))).not.toBe(defaultTag(id()))
  })

  test('attestations: each setting its own identity; none asked is the identity from before they existed', () => {
    const withAtt = (attestations: Attestations | undefined) =>
      id((i) => ({ ...i, build: { ...i.build, attestations } })).digest
    const all = [
      withAtt({ sbom: true }),
      withAtt({ sbom: 'r/scanner:1' }),
      withAtt({ provenance: 'false' }),
      withAtt({ provenance: 'mode=min' }),
      withAtt({ provenance: 'mode=max' }),
      withAtt({ sbom: true, provenance: 'mode=max' }),
    ]
    expect(new Set(all).size).toBe(all.length)
    expect(withAtt(undefined)).toBe(id().digest)
    expect(withAtt({})).toBe(id().digest)
    expect(id().document).not.toContain('attestations')
  })

  test.each([
    ['2', /^v2-[a-f0-9]{20}$/],
    [undefined, /^run-[a-f0-9]{20}$/],
    ['weird version!', /^run-[a-f0-9]{20}$/],
  ])('default tag for version %s', (version, re) => {
    const tag = defaultTag(id((i) => ({ ...i, model: { ...i.model, version } })))
    expect(tag).toMatch(re)
    expect(tag.length).toBeLessThanOrEqual(128)
  })

  test('requirements normalisation keeps URL fragments', () => {
    expect(normalizeRequirements('git+https://x/y.git#egg=y\n  # c\nnumpy<2 # why\n')).toBe(
      'git+https://x/y.git#egg=y\nnumpy<2\n',
    )
    expect(normalizeRequirements('\n# only comments\n')).toBe('')
  })

  test('labels carry the identity and OCI metadata', () => {
    const identity = id()
    const labels = identityLabels(identity, { source: 'https://github.com/acme/wine', revision: 'abc' })
    expect(labels).toMatchObject({
      [IDENTITY_LABEL]: identity.digest,
      'org.opencontainers.image.title': 'wine-classifier',
      'org.opencontainers.image.version': '2',
      'org.opencontainers.image.base.name': BASE.base.ref,
      'org.opencontainers.image.base.digest': BASE.base.digest,
      'org.opencontainers.image.source': 'https://github.com/acme/wine',
      'org.opencontainers.image.revision': 'abc',
      'mlflow-k8s-deploy.model.name': 'wine-classifier',
      'mlflow-k8s-deploy.model.version': '2',
      'mlflow-k8s-deploy.model.run-id': 'r1',
      'mlflow-k8s-deploy.runtime': 'mlserver 1.7.1',
    })
    // Provenance is not identity: the same model from another commit is the same image.
    expect(identityLabels(identity, { revision: 'def' })[IDENTITY_LABEL]).toBe(identity.digest)
  })
})

describe('decideCache', () => {
  const same = { exists: true as const, digest: DIG, labels: { [IDENTITY_LABEL]: I } }
  const other = { exists: true as const, digest: DIG, labels: { [IDENTITY_LABEL]: 'b'.repeat(64) } }
  const foreign = { exists: true as const, digest: DIG, labels: {} }

  test.each<[string, Partial<CacheRuleInput>, string, RegExp | undefined]>([
    ['auto, tag absent', {}, 'build', undefined],
    ['auto, same identity', { remote: same }, 'hit', undefined],
    ['auto, other identity on our tag', { remote: other }, 'build', /overwritten by something else/],
    ['auto, user tag, same identity', { userTag: true, remote: same }, 'hit', undefined],
    ['auto, user tag, other identity', { userTag: true, remote: other }, 'build', /Mutable tags are risky/],
    ['auto, user tag, foreign image', { userTag: true, remote: foreign }, 'build', /without our identity label/],
    ['always, same identity', { policy: 'always', remote: same }, 'build', undefined],
    ['always, absent', { policy: 'always' }, 'build', undefined],
    ['never, same identity', { policy: 'never', remote: same }, 'hit', undefined],
  ])('%s', (_name, over, kind, warning) => {
    const d = decideCache(input(over))
    expect(d.kind).toBe(kind)
    if (d.kind === 'hit') expect(d.digest).toBe(DIG)
    if (warning) expect(d.kind === 'build' && d.warning).toMatch(warning)
    else expect(d.kind === 'build' ? d.warning : undefined).toBeUndefined()
  })

  test.each([
    ['absent', { exists: false as const }, /does not exist yet/],
    ['other identity', other, /another model/],
  ])('never + %s is a clear error', (_n, remote, why) => {
    expect(() => decideCache(input({ policy: 'never', remote }))).toThrow(/build: never, but the image must be built/)
    expect(() => decideCache(input({ policy: 'never', remote }))).toThrow(why)
  })
})
