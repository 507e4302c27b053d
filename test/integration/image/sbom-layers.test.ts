// An SBOM per set of layers (src/image/sbom.ts) on the rig's real BuildKit and registry: the first
// build on a set of layers is scanned by BuildKit's SBOM generator (the rig's syft) and its SBOM
// remembered under a tag of those layers; a new model version on the same layers gets that SBOM,
// with itself as the subject, without a scan. Read back the way a policy engine or `docker buildx
// imagetools` would: the index, its attestation manifest, the in-toto statements.
import { rigEnv } from '../rig-env.js'
import { buildkitImages, registryBlobJson, registryManifest, type OciDescriptor } from './buildkit-builder.js'
import { deleteRegisteredModel } from '../mlflow/helpers.js'
import { docker, registerWithOwnRequirements, SLOW } from './helpers.js'

// Under QEMU the arm64 half of a cold build installs the model's requirements emulated.
const VERY_SLOW = 1_500_000
const RUN = Date.now().toString(36)
const NAME = `it-sbom-layers-${RUN}`
const GENERATOR = () => rigEnv('SBOM_GENERATOR_IMAGE')
// Versions 1 and 2 of the fixture with requirements of this run's own: one cache record per step.
const MODEL = `it-sbom-layers-${RUN}`
const { deps, inputs, plan, build, dockerConfig } = buildkitImages(
  NAME,
  () => ({ attestations: { sbom: GENERATOR(), provenance: 'mode=max' } }),
  () => MODEL,
)
beforeAll(() => registerWithOwnRequirements(MODEL, `mk8sd-${RUN}`), SLOW)
afterAll(() => deleteRegisteredModel(MODEL))

interface Statement {
  readonly _type: string
  readonly predicateType: string
  readonly subject: { readonly name: string; readonly digest: { readonly sha256: string } }[]
  readonly predicate: { readonly packages?: { name: string; versionInfo?: string }[] } & Record<string, unknown>
}

/** The tag's index, its amd64 image, and the image's in-toto statements by predicate type. */
async function readBack(reference: string) {
  const top = await registryManifest(NAME, reference)
  const children = top.manifest.manifests ?? []
  const image = children.find((m) => m.platform?.architecture === 'amd64')!
  const attestation = children.find(
    (m) =>
      m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' &&
      m.annotations['vnd.docker.reference.digest'] === image.digest,
  )
  const statements = new Map<string, Statement>()
  const layers: OciDescriptor[] = attestation
    ? ((await registryManifest(NAME, attestation.digest)).manifest.layers ?? [])
    : []
  for (const layer of layers)
    statements.set(
      layer.annotations!['in-toto.io/predicate-type']!,
      (await registryBlobJson(NAME, layer.digest)) as Statement,
    )
  return { top, image, attestation, statements, count: children.length }
}

async function tags(): Promise<string[]> {
  const res = await fetch(`http://${rigEnv('REGISTRY')}/v2/${NAME}/tags/list`)
  return ((await res.json()) as { tags: string[] }).tags.sort()
}

const packages = (s: Statement) => (s.predicate.packages ?? []).map((p) => `${p.name}@${p.versionInfo ?? ''}`).sort()

let first: { tag: string; sbomTags: string[]; statement: Statement }

describe('an SBOM per set of layers, on the BuildKit builder', () => {
  test(
    'the first build on its layers is scanned, and its SBOM remembered under a tag of those layers',
    async () => {
      const d = deps()
      const p = await plan('1')
      const out = await build('1', p, {}, d)
      const log = d.log.lines.join('\n')
      expect(log).toMatch(/SBOM: no SBOM is remembered for these layers: building again with BuildKit's scan/)
      expect(log).toMatch(/SBOM: remembered for the next build on these layers as sbom-[0-9a-f]{40}/)
      console.log(`first build (pushed without, then scanned): ${out.seconds.toFixed(1)} s`)

      const sbomTags = (await tags()).filter((t) => t.startsWith('sbom-'))
      expect(sbomTags).toHaveLength(1)
      expect(await tags()).toEqual([p.tag, sbomTags[0]].sort())
      const { top, image, attestation, statements } = await readBack(p.tag)
      expect(top.digest).toBe(out.digest)
      const sbom = statements.get('https://spdx.dev/Document')!
      expect(sbom.subject[0]!.digest.sha256).toBe(image.digest.slice('sha256:'.length))
      // The remembered tag is this very attestation manifest.
      expect((await registryManifest(NAME, sbomTags[0]!)).digest).toBe(attestation!.digest)
      expect(sbom.subject[0]!.name).toBe(statements.get('https://slsa.dev/provenance/v1')!.subject[0]!.name)
      first = { tag: p.tag, sbomTags, statement: sbom }
    },
    SLOW,
  )

  test(
    'a new model version on the same layers: no scan, the remembered SBOM attached with the new image as its subject',
    async () => {
      const d = deps()
      const p = await plan('2')
      expect(p.decision).toBe('build')
      const out = await build('2', p, {}, d)
      const log = d.log.lines.join('\n')
      expect(log).toContain(
        `SBOM: these layers were scanned before (${first.sbomTags[0]}): attached to ${p.ref} without a new scan`,
      )
      expect(log).not.toMatch(/generating sbom/i)
      console.log(`new version, SBOM attached: ${out.seconds.toFixed(1)} s`)

      const { top, image, attestation, statements, count } = await readBack(p.tag)
      expect(top.digest).toBe(out.digest)
      expect(count).toBe(2)
      expect(attestation).toBeDefined()
      expect([...statements.keys()].sort()).toEqual(['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document'])
      const sbom = statements.get('https://spdx.dev/Document')!
      const provenance = statements.get('https://slsa.dev/provenance/v1')!
      // Subject: this image, named as BuildKit names it in this build's own provenance… except
      // that the build pushed by digest, so BuildKit's name has no tag; ours names the tag.
      expect(sbom.subject).toEqual([
        {
          name: `pkg:docker/${rigEnv('REGISTRY')}/${NAME}@${p.tag}?platform=linux%2Famd64`,
          digest: { sha256: image.digest.slice('sha256:'.length) },
        },
      ])
      expect(provenance.subject[0]!.digest.sha256).toBe(image.digest.slice('sha256:'.length))
      expect(sbom.predicate).toEqual(first.statement.predicate)
      // This build's provenance names model version 2.
      const request = (
        provenance.predicate as {
          buildDefinition: { externalParameters: { request: { args: Record<string, string> } } }
        }
      ).buildDefinition.externalParameters.request.args
      expect(request['label:mlflow-k8s-deploy.model.version']).toBe('2')
      // No new remembered tag: the same layers.
      expect((await tags()).filter((t) => t.startsWith('sbom-'))).toEqual(first.sbomTags)
    },
    SLOW,
  )

  test(
    'docker buildx imagetools reads the attached SBOM as BuildKit’s own',
    async () => {
      const p = await plan('2')
      expect(p.decision).toBe('hit')
      const out = await docker(['buildx', 'imagetools', 'inspect', p.ref, '--format', '{{json .SBOM}}'], {
        DOCKER_CONFIG: dockerConfig(),
      })
      const sbom = JSON.parse(out) as { SPDX?: { packages?: unknown[] } }
      expect(sbom.SPDX?.packages?.length).toBe(first.statement.predicate.packages!.length)
    },
    SLOW,
  )

  test(
    'the attached SBOM lists what BuildKit’s own scan of the new image lists',
    async () => {
      // The same generator by another name (its digest) has no SBOM remembered: BuildKit scans.
      const [repository, tag] = GENERATOR()
        .slice(GENERATOR().indexOf('/') + 1)
        .split(':')
      const byDigest = `${GENERATOR().slice(0, GENERATOR().lastIndexOf(':'))}@${(await registryManifest(repository!, tag!)).digest}`
      const d = deps()
      const over = { attestations: { sbom: byDigest, provenance: 'mode=max' as const } }
      const p = await plan('2', over)
      await build('2', p, over, d)
      expect(d.log.lines.join('\n')).toMatch(/building again with BuildKit's scan/)
      const scanned = (await readBack(p.tag)).statements.get('https://spdx.dev/Document')!
      // The attached SBOM's predicate is the first one's (the test before).
      expect(packages(scanned)).toEqual(packages(first.statement))
      console.log(`scanned and attached SBOMs: ${packages(scanned).length} packages each, the same`)
    },
    SLOW,
  )
})

describe('linux/amd64 + linux/arm64 (QEMU)', () => {
  const BOTH = { baseImage: rigEnv('KSERVE_BASE_IMAGE_MULTI'), platforms: ['linux/amd64', 'linux/arm64'] }
  test(
    'each platform’s SBOM is remembered by its own layers, and attached to its own image in the next version’s index',
    async () => {
      const logs: string[] = []
      const indexes: Awaited<ReturnType<typeof registryManifest>>[] = []
      for (const version of ['1', '2']) {
        const d = deps()
        const p = await plan(version, BOTH)
        const out = await build(version, p, BOTH, d)
        logs.push(d.log.lines.filter((l) => l.startsWith('SBOM: ')).join('\n'))
        indexes.push(await registryManifest(NAME, p.tag))
        expect(indexes.at(-1)!.digest).toBe(out.digest)
      }
      expect(logs[0]).toMatch(/remembered for the next build on these layers as sbom-[0-9a-f]{40}, sbom-[0-9a-f]{40}$/)
      expect(logs[1]).toMatch(/these layers were scanned before \(sbom-[0-9a-f]{40}, sbom-[0-9a-f]{40}\): attached/)
      const v2 = indexes[1]!.manifest.manifests!
      for (const arch of ['amd64', 'arm64']) {
        const image = v2.find((m) => m.platform?.architecture === arch)!
        const att = v2.find((m) => m.annotations?.['vnd.docker.reference.digest'] === image.digest)!
        const layers = (await registryManifest(NAME, att.digest)).manifest.layers ?? []
        const spdx = layers.find((l) => l.annotations?.['in-toto.io/predicate-type'] === 'https://spdx.dev/Document')!
        const statement = (await registryBlobJson(NAME, spdx.digest)) as Statement
        expect(statement.subject[0]!.name).toContain(`platform=linux%2F${arch}`)
        expect(statement.subject[0]!.digest.sha256).toBe(image.digest.slice('sha256:'.length))
        // An SBOM of that platform's files: its Python packages are built for it.
        expect(JSON.stringify(statement.predicate)).toMatch(arch === 'amd64' ? /x86_64|amd64/ : /aarch64|arm64/)
      }
      expect(v2.length).toBe(4)
    },
    VERY_SLOW,
  )
})

describe('the identity tag never holds an image without its SBOM', () => {
  test(
    'the build before the scan is pushed by digest only',
    async () => {
      const all = await tags()
      // Identity tags (v1-…, v2-…) and remembered SBOMs only: no tag of an image without one.
      for (const t of all) {
        if (t.startsWith('sbom-')) continue
        const { statements } = await readBack(t)
        expect(statements.has('https://spdx.dev/Document')).toBe(true)
      }
      expect(inputs().attestations?.sbom).toBe(GENERATOR())
    },
    SLOW,
  )
})
