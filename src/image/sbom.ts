// An SBOM per set of layers, not per image. BuildKit scans the whole root filesystem of every
// image it builds with an SBOM: about 10 s for a serving image (a checksum of the mounted tree,
// the generator, the export), even when only the model layer changed. But the packages an image
// holds are installed by the layers below and around the model: the SBOM of the first image
// built on exactly those layers describes every later image on them. So the action remembers it in
// the image's repository, tagged by those layers' content digests, and a build on the same layers
// attaches it with the new image as its subject instead of scanning again. Content digests (the
// config's rootfs.diff_ids), not the pushed blobs' digests: BuildKit pushes one layer as the gzip
// blob it exported in one build and as a zstd blob in another.
//
// Kept sound by two rules: the key is every layer but the model's (found by the config's
// history, not by position), and an SBOM that mentions the model's directory (its generator
// found something there) is never remembered. Pure functions here; SbomStore does the reads and
// writes through RegistryClient.
import { canonicalJson, sha256Hex } from './identity.js'
import { MODEL_DIR_IN_IMAGE } from './context.js'
import { MEDIA, type RegistryClient } from './registry.js'
import { repositoryName, type ImageRef } from './reference.js'

export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document'
const IN_TOTO = 'application/vnd.in-toto+json'
const PREDICATE_ANNOTATION = 'in-toto.io/predicate-type'
const REFERENCE_TYPE = 'vnd.docker.reference.type'
const REFERENCE_DIGEST = 'vnd.docker.reference.digest'
const ATTESTATION_MANIFEST = 'attestation-manifest'
// BuildKit's attestation manifests: an empty config ({}) and this artifact type.
const ATTESTATION_ARTIFACT = 'application/vnd.docker.attestation.manifest.v1+json'
const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const

export interface Descriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string }
  readonly annotations?: Readonly<Record<string, string>>
  readonly data?: string
}

export interface OciIndex {
  readonly schemaVersion: 2
  readonly mediaType: string
  readonly manifests: readonly Descriptor[]
  readonly annotations?: Readonly<Record<string, string>>
}

export interface ImageManifest {
  readonly schemaVersion?: number
  readonly mediaType?: string
  readonly config: Descriptor
  readonly layers: readonly Descriptor[]
}

interface HistoryEntry {
  readonly created_by?: string
  readonly empty_layer?: boolean
}

/**
 * The layers an image's packages come from (their content digests, the config's diff_ids): every
 * layer but the model's, paired with the config's history (one non-empty entry per layer).
 * Undefined when the model's COPY is not found exactly once, or the history does not pair with the
 * layers: such an image is always scanned.
 */
export function layersBesideModel(layers: readonly string[], history: readonly HistoryEntry[]): string[] | undefined {
  const made = history.filter((h) => !h.empty_layer)
  if (made.length !== layers.length) return undefined
  const model = made.flatMap((h, i) => (isModelCopy(h.created_by ?? '') ? [i] : []))
  if (model.length !== 1) return undefined
  return layers.filter((_, i) => i !== model[0])
}

// BuildKit writes `COPY --chown=1000:0 model/ /opt/mlflow-model/ # buildkit`.
function isModelCopy(createdBy: string): boolean {
  return /^COPY\b/.test(createdBy) && createdBy.includes(` ${MODEL_DIR_IN_IMAGE}/`)
}

/** The tag an SBOM of these layers is remembered under, per platform and generator. */
export function sbomTag(o: { platform: string; generator: string; layers: readonly string[] }): string {
  const key = sha256Hex(canonicalJson({ v: 1, platform: o.platform, generator: o.generator, layers: o.layers }))
  return `sbom-${key.slice(0, 40)}`
}

/** What the generator is called in the key: BuildKit's default, or the image the `sbom` input names. */
export function generatorName(sbom: true | string): string {
  return sbom === true ? 'buildkit-default' : sbom
}

/** An image's entries in an index, without attestation manifests. */
export function imageEntries(index: OciIndex): Descriptor[] {
  return index.manifests.filter((m) => m.annotations?.[REFERENCE_TYPE] !== ATTESTATION_MANIFEST)
}

/** The attestation manifest BuildKit attached to the image `digest`, if any. */
export function attestationEntry(index: OciIndex, digest: string): Descriptor | undefined {
  return index.manifests.find(
    (m) => m.annotations?.[REFERENCE_TYPE] === ATTESTATION_MANIFEST && m.annotations[REFERENCE_DIGEST] === digest,
  )
}

/** The SPDX statement's layer in an attestation manifest. */
export function spdxLayer(manifest: ImageManifest): Descriptor | undefined {
  return manifest.layers.find(
    (l) => l.mediaType === IN_TOTO && l.annotations?.[PREDICATE_ANNOTATION] === SPDX_PREDICATE_TYPE,
  )
}

/** Whether an SBOM statement may describe other images on the same layers: nothing in it is the model's. */
export function describesOnlyLayers(statement: string): boolean {
  return !statement.includes(MODEL_DIR_IN_IMAGE)
}

/**
 * BuildKit's subject for an image: `pkg:docker/<registry>/<repository>@<tag>?platform=<os/arch>`
 * (a package URL) and the image manifest's digest.
 */
export function subjectOf(o: { repository: string; tag: string; platform: string; digest: string }) {
  return [
    {
      name: `pkg:docker/${o.repository}@${o.tag}?platform=${encodeURIComponent(o.platform)}`,
      digest: { sha256: o.digest.replace(/^sha256:/, '') },
    },
  ]
}

/** The statement with another subject; its predicate (the SPDX document) as it was. */
export function withSubject(statement: string, subject: ReturnType<typeof subjectOf>): string {
  const parsed = JSON.parse(statement) as Record<string, unknown>
  return JSON.stringify({ ...parsed, subject })
}

/**
 * An attestation manifest for `image` as BuildKit writes it, with `layers` (the in-toto
 * statements): the image's own from this build (provenance) and the remembered SBOM.
 */
export function attestationManifest(image: Descriptor, layers: readonly Descriptor[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType: ATTESTATION_ARTIFACT,
    config: EMPTY_CONFIG,
    layers,
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.size },
  })
}

/** The index entry of an attestation manifest for the image `imageDigest`. */
export function attestationDescriptor(manifest: string, imageDigest: string): Descriptor {
  return {
    mediaType: MEDIA.ociManifest,
    digest: `sha256:${sha256Hex(manifest)}`,
    size: Buffer.byteLength(manifest),
    annotations: { [REFERENCE_DIGEST]: imageDigest, [REFERENCE_TYPE]: ATTESTATION_MANIFEST },
    platform: { architecture: 'unknown', os: 'unknown' },
  }
}

/** The index with each image's attestation entry replaced (or added after the images). */
export function withAttestations(index: OciIndex, attestations: ReadonlyMap<string, Descriptor>): string {
  const kept = index.manifests.filter(
    (m) =>
      m.annotations?.[REFERENCE_TYPE] !== ATTESTATION_MANIFEST ||
      !attestations.has(m.annotations[REFERENCE_DIGEST] ?? ''),
  )
  return JSON.stringify({ ...index, manifests: [...kept, ...attestations.values()] })
}

/** The statement layer for an in-toto statement's text. */
export function statementLayer(text: string): Descriptor {
  return {
    mediaType: IN_TOTO,
    digest: `sha256:${sha256Hex(text)}`,
    size: Buffer.byteLength(text),
    annotations: { [PREDICATE_ANNOTATION]: SPDX_PREDICATE_TYPE },
  }
}

export function formatPlatform(p: Descriptor['platform']): string {
  return [p?.os ?? 'unknown', p?.architecture ?? 'unknown', ...(p?.variant ? [p.variant] : [])].join('/')
}

/** One image of a pushed index: its entry, and the tag its layers' SBOM is remembered under (undefined: unknown layers). */
interface IndexImage {
  readonly entry: Descriptor
  readonly tag: string | undefined
}

/** What SbomStore.attach did: the index now under the tag, and which remembered SBOMs it used. */
export interface Attached {
  readonly digest: string
  readonly from: readonly string[]
}

/** The registry side: remembered SBOMs read, attached and written. */
export class SbomStore {
  constructor(private readonly registry: RegistryClient) {}

  /**
   * After a build without an SBOM: gives every image in the index at `digest` the SBOM remembered
   * for its layers, and pushes the new index under `tag`. Undefined (nothing written) when some
   * image has none remembered: the caller builds with BuildKit's scan instead.
   */
  async attach(repo: ImageRef, tag: string, digest: string, generator: string): Promise<Attached | undefined> {
    const index = await this.index(repo, digest)
    if (!index) return undefined
    const images = await this.images(repo, index, generator)
    // Every image's SBOM found before anything is written.
    const remembered: { entry: Descriptor; statement: string; tag: string }[] = []
    for (const image of images) {
      const statement = image.tag ? await this.remembered(repo, image.tag) : undefined
      if (!image.tag || !statement) return undefined
      remembered.push({ entry: image.entry, statement, tag: image.tag })
    }
    const attestations = new Map<string, Descriptor>()
    for (const { entry, statement } of remembered) {
      const subject = subjectOf({
        repository: repositoryName(repo),
        tag,
        platform: formatPlatform(entry.platform),
        digest: entry.digest,
      })
      const text = withSubject(statement, subject)
      await this.registry.pushBlob(repo, text)
      // This build's own statements (its provenance) stay beside the SBOM.
      const own = attestationEntry(index, entry.digest)
      const ownLayers = own ? ((await this.manifest(repo, own.digest))?.layers ?? []) : []
      const layers = [
        ...ownLayers.filter((l) => l.annotations?.[PREDICATE_ANNOTATION] !== SPDX_PREDICATE_TYPE),
        statementLayer(text),
      ]
      const manifest = attestationManifest(entry, layers)
      await this.registry.pushManifest(repo, `sha256:${sha256Hex(manifest)}`, MEDIA.ociManifest, manifest)
      attestations.set(entry.digest, attestationDescriptor(manifest, entry.digest))
    }
    const pushed = await this.registry.pushManifest(repo, tag, index.mediaType, withAttestations(index, attestations))
    return { digest: pushed, from: remembered.map((r) => r.tag) }
  }

  /**
   * After a build with BuildKit's scan: tags each image's attestation manifest by the image's
   * layers, so the next build on them finds its SBOM. The tags it wrote (none when BuildKit's
   * SBOM mentions the model).
   */
  async remember(repo: ImageRef, digest: string, generator: string): Promise<string[]> {
    const index = await this.index(repo, digest)
    if (!index) return []
    const written: string[] = []
    for (const image of await this.images(repo, index, generator)) {
      const own = attestationEntry(index, image.entry.digest)
      if (!image.tag || !own) continue
      const got = await this.registry.manifestText(repo, own.digest)
      const layer = got ? spdxLayer(JSON.parse(got.text) as ImageManifest) : undefined
      if (!got || !layer || !describesOnlyLayers(await this.registry.blobText(repo, layer.digest, 'SBOM statement')))
        continue
      await this.registry.pushManifest(repo, image.tag, got.mediaType || MEDIA.ociManifest, got.text)
      written.push(image.tag)
    }
    return written
  }

  /** The pushed index; a single image (provenance: false on one platform) as an index of one. */
  private async index(repo: ImageRef, digest: string): Promise<OciIndex | undefined> {
    const got = await this.registry.manifestText(repo, digest)
    if (!got) return undefined
    const doc = JSON.parse(got.text) as Partial<OciIndex> & Partial<ImageManifest>
    if (Array.isArray(doc.manifests)) return doc as OciIndex
    if (!doc.config) return undefined
    const config = JSON.parse(await this.registry.blobText(repo, doc.config.digest, 'config blob')) as {
      os?: string
      architecture?: string
      variant?: string
    }
    const platform = {
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    }
    return {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [
        { mediaType: doc.mediaType ?? got.mediaType, digest: got.digest, size: Buffer.byteLength(got.text), platform },
      ],
    }
  }

  private async images(repo: ImageRef, index: OciIndex, generator: string): Promise<IndexImage[]> {
    const out: IndexImage[] = []
    for (const entry of imageEntries(index)) {
      const manifest = await this.manifest(repo, entry.digest)
      if (!manifest) {
        out.push({ entry, tag: undefined })
        continue
      }
      const config = JSON.parse(await this.registry.blobText(repo, manifest.config.digest, 'config blob')) as {
        history?: HistoryEntry[]
        rootfs?: { diff_ids?: string[] }
      }
      const layers = layersBesideModel(config.rootfs?.diff_ids ?? [], config.history ?? [])
      out.push({
        entry,
        tag: layers ? sbomTag({ platform: formatPlatform(entry.platform), generator, layers }) : undefined,
      })
    }
    return out
  }

  /** The SPDX statement remembered under `tag`, or undefined. */
  private async remembered(repo: ImageRef, tag: string): Promise<string | undefined> {
    const manifest = await this.manifest(repo, tag)
    const layer = manifest && spdxLayer(manifest)
    return layer ? this.registry.blobText(repo, layer.digest, 'SBOM statement') : undefined
  }

  private async manifest(repo: ImageRef, reference: string): Promise<ImageManifest | undefined> {
    const got = await this.registry.manifestText(repo, reference)
    return got ? (JSON.parse(got.text) as ImageManifest) : undefined
  }
}
