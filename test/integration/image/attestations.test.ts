// SBOM and SLSA provenance attestations from the rig's BuildKit (parts/buildkit.sh), as a job
// with docker/setup-buildx-action gets them: `sbom` set to the rig's generator image (syft,
// parts/sbom_scanner.sh: Docker Hub's default generator is out of reach here) and
// `provenance: mode=max`. Read back from the registry the way a policy engine would: the index,
// its attestation manifest, the in-toto statements in that manifest's layers.
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildServingImage, type ImagePlan } from '../../../src/image/index.js'
import { MEDIA } from '../../../src/image/registry.js'
import { rigEnv } from '../rig-env.js'
import { buildkitImages, registryBlobJson, registryManifest } from './buildkit-builder.js'
import { imageDeps, inspectModel, mlflowClient, SLOW } from './helpers.js'

const RUN = Date.now().toString(36)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const NAME = `it-attest-wine-${RUN}`
const { http, inputs, plan, build } = buildkitImages(NAME, () => ({
  attestations: { sbom: rigEnv('SBOM_GENERATOR_IMAGE'), provenance: 'mode=max' },
}))

interface Statement {
  readonly _type: string
  readonly predicateType: string
  readonly subject: { readonly name: string; readonly digest: { readonly sha256: string } }[]
  readonly predicate: Record<string, unknown>
}
interface SpdxPackage {
  readonly name: string
  readonly versionInfo?: string
}

/** The in-toto statements of the index's attestation manifest, by predicate type. */
async function attestations(tag: string) {
  const top = await registryManifest(NAME, tag)
  const children = top.manifest.manifests ?? []
  const image = children.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64')
  const attestation = children.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')
  const manifest = attestation ? (await registryManifest(NAME, attestation.digest)).manifest : undefined
  const statements = new Map<string, Statement>()
  for (const layer of manifest?.layers ?? []) {
    const type = layer.annotations?.['in-toto.io/predicate-type']
    if (layer.mediaType === 'application/vnd.in-toto+json' && type)
      statements.set(type, (await registryBlobJson(NAME, layer.digest)) as Statement)
  }
  return { top, image, attestation, statements }
}

let built: { plan: ImagePlan; digest: string; image: string }

describe('sbom and provenance: mode=max on the BuildKit builder', () => {
  test(
    'the index holds an attestation manifest with an SPDX SBOM of the image and SLSA provenance of the build',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('build')
      const out = await build('1', p)
      built = { plan: p, ...out }
      console.log(`BuildKit build with sbom + provenance mode=max: ${out.seconds.toFixed(1)} s`)

      const { top, image, attestation, statements } = await attestations(p.tag)
      expect(top.digest).toBe(out.digest)
      expect(top.manifest.mediaType).toBe(MEDIA.ociIndex)
      expect(image).toBeDefined()
      expect(attestation?.annotations?.['vnd.docker.reference.digest']).toBe(image!.digest)
      // BuildKit 0.34 writes SLSA v1 provenance unless asked for v0.2 (docs/attestations/slsa-provenance.md).
      expect([...statements.keys()].sort()).toEqual(['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document'])

      // The SBOM: its subject is the platform image, its packages what the image installed (the
      // kserve base's server and MLflow loader, the model's own requirements) and Debian's.
      const sbom = statements.get('https://spdx.dev/Document')!
      expect(sbom.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(image!.digest)
      expect(sbom.predicate.spdxVersion).toMatch(/^SPDX-2\.\d$/)
      const packages = sbom.predicate.packages as SpdxPackage[]
      const version = (name: string) => packages.find((pk) => pk.name.toLowerCase() === name)?.versionInfo
      expect(version('kserve')).toBe('0.21.0')
      expect(version('mlflow-skinny')).toBe('3.17.2')
      const sklearn = /^scikit-learn==(\S+)$/m.exec(p.identity.input.model.requirements)?.[1]
      expect(sklearn).toBeDefined()
      expect(version('scikit-learn')).toBe(sklearn)
      expect(version('python3.11') ?? version('libc6')).toBeDefined()
      console.log(`SBOM: ${packages.length} packages`)

      // The provenance: the build's request names the model and the pinned base; its resolved
      // dependencies name the base (and the SBOM generator) by digest; mode=max adds the Dockerfile.
      const provenance = statements.get('https://slsa.dev/provenance/v1')!
      expect(provenance.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(image!.digest)
      const predicate = provenance.predicate as {
        buildDefinition: {
          buildType: string
          externalParameters: { request: { frontend: string; args: Record<string, string> } }
          resolvedDependencies: { uri: string; digest: { sha256: string } }[]
        }
        runDetails: { metadata: { buildkit_metadata?: { source?: { infos?: { filename: string; data: string }[] } } } }
      }
      const { buildType, externalParameters, resolvedDependencies } = predicate.buildDefinition
      expect(buildType).toBe('https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md')
      expect(externalParameters.request.frontend).toBe('dockerfile.v0')
      expect(externalParameters.request.args).toMatchObject({
        'build-arg:MODEL_NAME': MODEL(),
        'build-arg:BASE_IMAGE': p.base.pinned,
        'label:mlflow-k8s-deploy.identity': p.identity.digest,
        'label:mlflow-k8s-deploy.model.version': '1',
      })
      const baseDigest = p.base.digest.replace(/^sha256:/, '')
      expect(resolvedDependencies.find((d) => d.digest.sha256 === baseDigest)?.uri).toMatch(
        /^pkg:docker\/.*kserve-base/,
      )
      expect(resolvedDependencies.some((d) => d.uri.includes('sbom-scanner'))).toBe(true)
      const dockerfile = predicate.runDetails.metadata.buildkit_metadata?.source?.infos?.find(
        (i) => i.filename === 'Dockerfile',
      )
      expect(Buffer.from(dockerfile!.data, 'base64').toString()).toMatch(/^# Generated by mlflow-k8s-deploy/)
    },
    SLOW,
  )

  test(
    'the same settings again: a cache hit on the index digest, the one the deploy runs',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('hit')
      expect(p.digest).toBe(built.digest)
      expect(p.image).toBe(built.image)
      expect(p.identity.digest).toBe(built.plan.identity.digest)
    },
    SLOW,
  )

  test(
    'the same model without attestations asked is another identity and tag: sbom on never reuses an image without one',
    async () => {
      const plain = await plan('1', { attestations: undefined })
      expect(plain.identity.digest).not.toBe(built.plan.identity.digest)
      expect(plain.tag).not.toBe(built.plan.tag)
      expect(plain.decision).toBe('build')
      const sbomOnly = await plan('1', { attestations: { sbom: rigEnv('SBOM_GENERATOR_IMAGE') } })
      expect(sbomOnly.identity.digest).not.toBe(built.plan.identity.digest)
    },
    SLOW,
  )
})

describe('the docker driver', () => {
  test(
    'sbom fails at once with one line naming the input and the fix, nothing pushed',
    async () => {
      const over = { builder: undefined, tag: `docker-driver-${RUN}`, attestations: { sbom: true } as const }
      const p = await plan('1', over)
      const mlflow = mlflowClient(http)
      const details = await inspectModel(mlflow, `models:/${MODEL()}/1`)
      const downloaded = await mlflow.download(details, { workDir: await mkdtemp(join(tmpdir(), 'it-attest-model-')) })
      const d = imageDeps()
      const started = Date.now()
      const failure = buildServingImage(d, { image: inputs(over), plan: p, modelDir: downloaded.dir, network: 'host' })
      await expect(failure).rejects.toThrow(
        /^sbom: true: the docker driver cannot attach SBOM or provenance attestations: use a BuildKit builder \(docker\/setup-buildx-action, then its name in the builder input\) or Docker's containerd image store$/,
      )
      expect(Date.now() - started).toBeLessThan(10_000)
      await expect(registryManifest(NAME, `docker-driver-${RUN}`)).rejects.toThrow(/answered 404/)
    },
    SLOW,
  )
})
