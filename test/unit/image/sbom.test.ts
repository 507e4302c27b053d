import { renderDockerfile } from '../../../src/image/context.js'
import { sha256Hex } from '../../../src/image/identity.js'
import {
  attestationDescriptor,
  attestationEntry,
  attestationManifest,
  describesOnlyLayers,
  generatorName,
  imageEntries,
  layersBesideModel,
  sbomTag,
  statementLayer,
  subjectOf,
  withAttestations,
  withSubject,
  type Descriptor,
  type OciIndex,
} from '../../../src/image/sbom.js'

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`

// The kserve image's history as BuildKit v0.34 writes it (abridged): one entry per instruction,
// empty_layer on those that change no file. The WORKDIR after the model makes an empty-tar layer.
const HISTORY = [
  { created_by: 'base layer' },
  { created_by: 'ARG KSERVE_VERSION', empty_layer: true },
  { created_by: 'COPY install.sh /opt/mlflow-k8s-deploy/install.sh # buildkit' },
  { created_by: 'RUN |3 … sh /opt/mlflow-k8s-deploy/install.sh -r …' },
  { created_by: 'COPY server.py /opt/mlflow-k8s-deploy/server.py # buildkit' },
  { created_by: 'COPY --chown=1000:0 model/ /opt/mlflow-model/ # buildkit' },
  { created_by: 'ENV MLFLOW_MODEL_DIR=/opt/mlflow-model', empty_layer: true },
  { created_by: 'WORKDIR /opt/mlflow-k8s-deploy/work' },
  { created_by: 'CMD ["python" "/opt/mlflow-k8s-deploy/server.py"]', empty_layer: true },
]
const LAYERS = [d(1), d(2), d(3), d(4), d(5), d(6)]

describe('layersBesideModel: the layers an image’s packages come from', () => {
  test.each<[string, string[], typeof HISTORY, string[] | undefined]>([
    [
      'every layer but the model’s, the empty WORKDIR layer after it kept',
      LAYERS,
      HISTORY,
      [d(1), d(2), d(3), d(4), d(6)],
    ],
    ['history and layers that do not pair: unknown', LAYERS.slice(1), HISTORY, undefined],
    [
      'no COPY into the model directory (another Dockerfile): unknown',
      LAYERS,
      HISTORY.map((h) => ({ ...h, created_by: h.created_by.replace('/opt/mlflow-model/', '/srv/') })),
      undefined,
    ],
    [
      'two: unknown',
      [...LAYERS, d(7)],
      [...HISTORY, { created_by: 'COPY extra/ /opt/mlflow-model/extra/ # buildkit' }],
      undefined,
    ],
    [
      'a RUN mentioning the model directory is not the model’s layer',
      LAYERS,
      HISTORY.map((h, i) => (i === 3 ? { created_by: 'RUN ls /opt/mlflow-model/ # buildkit' } : h)),
      [d(1), d(2), d(3), d(4), d(6)],
    ],
  ])('%s', (_name, layers, history, expected) => {
    expect(layersBesideModel(layers, history)).toEqual(expected)
  })

  test.each(['kserve', 'mlserver'] as const)('the %s template copies the model in one instruction', (runtime) => {
    const copies = renderDockerfile(runtime)
      .split('\n')
      .filter((l) => /^COPY\b/.test(l) && l.includes(' /opt/mlflow-model/'))
    expect(copies).toEqual(['COPY --chown=1000:0 model/ /opt/mlflow-model/'])
  })
})

describe('sbomTag: per platform, generator and layers', () => {
  const base = { platform: 'linux/amd64', generator: 'buildkit-default', layers: [d(1), d(2)] }
  test('a tag the distribution spec allows, stable for the same key', () => {
    expect(sbomTag(base)).toMatch(/^sbom-[0-9a-f]{40}$/)
    expect(sbomTag({ ...base })).toBe(sbomTag(base))
  })
  test.each<[string, Partial<typeof base>]>([
    ['another platform', { platform: 'linux/arm64' }],
    ['another generator', { generator: 'r/scanner:2' }],
    ['another layer', { layers: [d(1), d(3)] }],
    ['the same layers in another order', { layers: [d(2), d(1)] }],
  ])('%s: another tag', (_name, over) => {
    expect(sbomTag({ ...base, ...over })).not.toBe(sbomTag(base))
  })
  test('the generator: BuildKit’s default, or the image named', () => {
    expect(generatorName(true)).toBe('buildkit-default')
    expect(generatorName('r/scanner:2')).toBe('r/scanner:2')
  })
})

const IMAGE: Descriptor = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d(7),
  size: 2944,
  platform: { architecture: 'amd64', os: 'linux' },
}
const OWN: Descriptor = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d(8),
  size: 900,
  annotations: { 'vnd.docker.reference.digest': d(7), 'vnd.docker.reference.type': 'attestation-manifest' },
  platform: { architecture: 'unknown', os: 'unknown' },
}
const INDEX: OciIndex = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [IMAGE, OWN],
}

describe('the index and its attestation manifests', () => {
  test('images and the attestation of one', () => {
    expect(imageEntries(INDEX)).toEqual([IMAGE])
    expect(attestationEntry(INDEX, d(7))).toEqual(OWN)
    expect(attestationEntry(INDEX, d(9))).toBeUndefined()
  })

  test('an attestation manifest as BuildKit writes it, its entry naming the image', () => {
    const text = '{"_type":"https://in-toto.io/Statement/v1"}'
    const layer = statementLayer(text)
    expect(layer).toEqual({
      mediaType: 'application/vnd.in-toto+json',
      digest: `sha256:${sha256Hex(text)}`,
      size: text.length,
      annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' },
    })
    const manifest = attestationManifest(IMAGE, [layer])
    expect(JSON.parse(manifest)).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.docker.attestation.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: `sha256:${sha256Hex('{}')}`,
        size: 2,
        data: Buffer.from('{}').toString('base64'),
      },
      layers: [layer],
      subject: { mediaType: IMAGE.mediaType, digest: d(7), size: 2944 },
    })
    expect(attestationDescriptor(manifest, d(7))).toEqual({
      ...OWN,
      digest: `sha256:${sha256Hex(manifest)}`,
      size: Buffer.byteLength(manifest),
    })
  })

  test('withAttestations replaces the image’s own attestation entry, and keeps the others', () => {
    const other: Descriptor = {
      ...OWN,
      digest: d(5),
      annotations: { ...OWN.annotations, 'vnd.docker.reference.digest': d(4) },
    }
    const arm: Descriptor = { ...IMAGE, digest: d(4), platform: { architecture: 'arm64', os: 'linux' } }
    const index = { ...INDEX, manifests: [IMAGE, arm, OWN, other] }
    const next: Descriptor = { ...OWN, digest: d(9) }
    expect(JSON.parse(withAttestations(index, new Map([[d(7), next]]))).manifests).toEqual([IMAGE, arm, other, next])
    // An image without one (provenance: false) gets one.
    expect(JSON.parse(withAttestations({ ...INDEX, manifests: [IMAGE] }, new Map([[d(7), next]]))).manifests).toEqual([
      IMAGE,
      next,
    ])
  })
})

describe('statements', () => {
  test('the subject BuildKit writes: a package URL naming the tag and the platform, the manifest digest', () => {
    expect(
      subjectOf({ repository: '127.0.0.1:5001/wine', tag: 'v1-abc', platform: 'linux/arm64/v8', digest: d(7) }),
    ).toEqual([
      { name: 'pkg:docker/127.0.0.1:5001/wine@v1-abc?platform=linux%2Farm64%2Fv8', digest: { sha256: d(7).slice(7) } },
    ])
  })

  test('withSubject changes the subject only', () => {
    const predicate = { spdxVersion: 'SPDX-2.3', packages: [{ name: 'numpy', versionInfo: '2.3.1' }] }
    const before = JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      predicateType: 'https://spdx.dev/Document',
      subject: [{ name: 'pkg:docker/r/wine@v1?platform=linux%2Famd64', digest: { sha256: 'aa' } }],
      predicate,
    })
    const subject = subjectOf({ repository: 'r/wine', tag: 'v2', platform: 'linux/amd64', digest: d(7) })
    expect(JSON.parse(withSubject(before, subject))).toEqual({ ...JSON.parse(before), subject })
  })

  test.each<[string, string, boolean]>([
    ['packages of the layers only', '{"packages":[{"name":"numpy","sourceInfo":"/opt/venv/lib/…"}]}', true],
    ['a package found in the model directory', '{"packages":[{"sourceInfo":"…: /opt/mlflow-model/code/x"}]}', false],
  ])('describesOnlyLayers: %s', (_name, statement, expected) => {
    expect(describesOnlyLayers(statement)).toBe(expected)
  })
})
