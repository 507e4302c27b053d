// cosign (https://docs.sigstore.dev/cosign/): signs a pushed serving image by digest and verifies
// an image's signature before it is deployed. The action runs the `cosign` CLI found on PATH (on
// GitHub: sigstore/cosign-installer); it never downloads one. Key material reaches cosign through
// a 0600 file that lives only while cosign runs, and the key's password through COSIGN_PASSWORD:
// never on the command line.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeployError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { Exec } from './exec.js'
import { isLoopbackRegistry, parseImageRef } from './reference.js'

/** A key as given: PEM text, or the path of a file holding it. */
export type KeySource = { readonly pem: string } | { readonly path: string }

/** How `sign: true` signs: keylessly with the job's GitHub OIDC token, or with a cosign key pair. */
export type Signer =
  | { readonly kind: 'keyless' }
  | { readonly kind: 'key'; readonly key: KeySource; readonly password: string | undefined }

/** What verify-signature accepts: a signature by this public key, or a keyless certificate. */
export type Verifier =
  | { readonly kind: 'key'; readonly key: KeySource }
  | { readonly kind: 'keyless'; readonly identityRegexp: string; readonly issuer: string }

export const KEYLESS_PREFIX = 'keyless:'
const PRIVATE_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/
const PUBLIC_PEM = /-----BEGIN PUBLIC KEY-----/

/** `signing-key`: a cosign private key (PEM) or a path to one. Never echoes the value. */
export function parseSigningKey(value: string, exists: (path: string) => boolean): KeySource | { problem: string } {
  const v = value.trim()
  if (PRIVATE_PEM.test(v)) return { pem: `${v}\n` }
  if (PUBLIC_PEM.test(v)) return { problem: 'holds a public key; signing needs the private key (cosign.key)' }
  if (v.includes('\n') || v.startsWith('-----'))
    return { problem: 'is neither a PEM private key (cosign generate-key-pair writes cosign.key) nor a path to one' }
  if (!exists(v)) return { problem: `file "${v}" does not exist (pass the key's PEM text or a path to it)` }
  return { path: v }
}

/**
 * `verify-signature`: a public key (PEM or path), or `keyless:<identity-regexp>@<issuer-url>`: the
 * certificate's identity (a regular expression, RE2 as cosign reads it) and the OIDC issuer that
 * vouched for it. The identity may itself hold `@` (a workflow ref): the issuer is what follows the
 * last `@http`.
 */
export function parseVerifier(value: string, exists: (path: string) => boolean): Verifier | { problem: string } {
  const v = value.trim()
  if (v.startsWith(KEYLESS_PREFIX)) {
    const rest = v.slice(KEYLESS_PREFIX.length)
    const at = rest.lastIndexOf('@http')
    const identityRegexp = at > 0 ? rest.slice(0, at) : ''
    const issuer = at > 0 ? rest.slice(at + 1) : ''
    if (!identityRegexp || !/^https?:\/\/[^\s/]+/.test(issuer))
      return {
        problem: `"${v}" is not keyless:<identity-regexp>@<issuer-url>, e.g. keyless:^https://github.com/acme/models/@https://token.actions.githubusercontent.com`,
      }
    return { kind: 'keyless', identityRegexp, issuer }
  }
  if (PUBLIC_PEM.test(v)) return { kind: 'key', key: { pem: `${v}\n` } }
  if (PRIVATE_PEM.test(v))
    return { problem: 'holds a private key: give the public key (cosign.pub), never the private one' }
  if (v.includes('\n') || v.startsWith('-----'))
    return { problem: 'is neither a PEM public key, a path to one, nor keyless:<identity-regexp>@<issuer-url>' }
  if (!exists(v))
    return {
      problem: `file "${v}" does not exist (pass a public key's PEM text or path, or keyless:<identity>@<issuer>)`,
    }
  return { kind: 'key', key: { path: v } }
}

/** Plain HTTP only where the action and Docker speak it too: a registry on loopback. */
function registryFlags(image: string): string[] {
  return isLoopbackRegistry(parseImageRef(image).registry) ? ['--allow-http-registry'] : []
}

/**
 * `cosign sign` of an image pinned by digest. With a key, no entry in the public transparency log
 * (Rekor): a key pair is trusted by whoever holds its public key, and private registries' digests
 * stay private. Keyless signing needs Rekor: its certificate lives ten minutes, the log proves it
 * was valid when it signed.
 */
export function signArgs(image: string, keyFile: string | undefined): string[] {
  const key = keyFile ? ['--key', keyFile, '--tlog-upload=false'] : []
  return ['sign', '--yes', ...key, ...registryFlags(image), image]
}

/** Whom a verification trusts: a public key's file, or a keyless certificate's identity and issuer. */
type VerifyWith = { readonly keyFile: string } | { readonly identityRegexp: string; readonly issuer: string }

/** A key-signed image has no Rekor entry to check; a keyless one must have one. */
function trustFlags(verifier: VerifyWith): string[] {
  return 'keyFile' in verifier
    ? ['--key', verifier.keyFile, '--insecure-ignore-tlog=true']
    : ['--certificate-identity-regexp', verifier.identityRegexp, '--certificate-oidc-issuer', verifier.issuer]
}

/** `cosign verify` of an image pinned by digest. */
export function verifyArgs(image: string, verifier: VerifyWith): string[] {
  return ['verify', ...trustFlags(verifier), ...registryFlags(image), '--output', 'json', image]
}

/** `cosign attest` of a predicate file; with a key, like sign, no Rekor entry. */
export function attestArgs(
  image: string,
  keyFile: string | undefined,
  predicateType: string,
  predicateFile: string,
): string[] {
  const key = keyFile ? ['--key', keyFile, '--tlog-upload=false'] : []
  return [
    'attest',
    '--yes',
    ...key,
    '--type',
    predicateType,
    '--predicate',
    predicateFile,
    '--replace',
    ...registryFlags(image),
    image,
  ]
}

/** `cosign verify-attestation`, filtered to one predicate type, printing each verified envelope. */
export function verifyAttestationArgs(image: string, verifier: VerifyWith, predicateType: string): string[] {
  return ['verify-attestation', ...trustFlags(verifier), '--type', predicateType, ...registryFlags(image), image]
}

/**
 * What cosign says when nothing matched: no attestation at all, none of the type, or none signed
 * by the key or identity asked for (cosign v2.6's wording).
 */
const NO_ATTESTATION = /no matching attestations|none of the attestations matched/i

/** The predicates of the DSSE envelopes cosign printed (one JSON object per line). */
export function predicatesOf(stdout: string, predicateType: string): unknown[] {
  const out: unknown[] = []
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue
    try {
      const envelope = JSON.parse(line) as { payload?: string }
      const statement = JSON.parse(Buffer.from(envelope.payload ?? '', 'base64').toString('utf8')) as {
        predicateType?: string
        predicate?: unknown
      }
      if (statement.predicateType === predicateType) out.push(statement.predicate)
    } catch {
      // a line that is not an envelope: cosign's own text
    }
  }
  return out
}

/** A 0600 file in `dir` holding the key's PEM, or the key's own path. */
async function keyPath(dir: string, key: KeySource, name: string): Promise<string> {
  if ('path' in key) return key.path
  const file = join(dir, name)
  await writeFile(file, key.pem, { mode: 0o600 })
  await chmod(file, 0o600)
  return file
}

export const COSIGN_MISSING =
  'cosign was not found on PATH: add sigstore/cosign-installer to the job before this step (or install cosign on the runner)'

/** cosign's own reason, one line: its last `Error: …` line, else the last line it printed. */
export function cosignReason(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const error = lines.filter((l) => l.startsWith('Error: ')).at(-1)
  return (error ?? lines.at(-1) ?? 'no output').replace(/^Error: /, '').replace(/^main\.go:\d+: /, '')
}

/** What verify-signature asked for, as the error message names it. */
export function describeVerifier(verifier: Verifier): string {
  if (verifier.kind === 'keyless')
    return `a keyless signature by an identity matching ${verifier.identityRegexp} from ${verifier.issuer}`
  return 'path' in verifier.key
    ? `a signature by the public key ${verifier.key.path}`
    : 'a signature by the public key in verify-signature'
}

export interface CosignOptions {
  readonly exec: Exec
  readonly log: Logger
  /** Added to every cosign call: DOCKER_CONFIG (registry credentials), the GitHub OIDC request variables. */
  readonly env?: Readonly<Record<string, string>>
  /** The cosign CLI, default `cosign` from PATH. */
  readonly cosign?: string
}

export class Cosign {
  constructor(private readonly options: CosignOptions) {}

  /** cosign's version line; throws naming the fix when cosign is missing. */
  async version(): Promise<string> {
    const res = await this.run(['version'])
    if (res.exitCode !== 0) throw new DeployError(`cosign version failed: ${cosignReason(res.stderr || res.stdout)}`)
    return /GitVersion:\s*(\S+)/.exec(res.stdout + res.stderr)?.[1] ?? 'unknown version'
  }

  /** Signs `image` (repository@digest) and pushes the signature next to it. */
  async sign(image: string, signer: Signer): Promise<void> {
    await this.withKey(signer.kind === 'key' ? signer.key : undefined, 'cosign.key', async (keyFile) => {
      const env: Record<string, string> = signer.kind === 'key' ? { COSIGN_PASSWORD: signer.password ?? '' } : {}
      const res = await this.run(signArgs(image, keyFile), env)
      if (res.exitCode !== 0)
        throw new DeployError(`signing ${image} failed: ${cosignReason(`${res.stdout}\n${res.stderr}`)}`)
    })
  }

  /** Throws one line naming the image and what did not verify unless `image` carries a matching signature. */
  async verify(image: string, verifier: Verifier): Promise<void> {
    const key = verifier.kind === 'key' ? verifier.key : undefined
    await this.withKey(key, 'cosign.pub', async (keyFile) => {
      const args = verifyArgs(image, keyFile ? { keyFile } : (verifier as Extract<Verifier, { kind: 'keyless' }>))
      const res = await this.run(args)
      if (res.exitCode !== 0)
        throw new DeployError(
          `the signature of ${image} did not verify: wanted ${describeVerifier(verifier)}; cosign: ${cosignReason(res.stderr || res.stdout)}`,
        )
    })
  }

  /**
   * Attaches a signed in-toto attestation of `predicateType` to `image` (repository@digest),
   * replacing an earlier one of the same type: a cache hit re-attested by a later run keeps one.
   */
  async attest(image: string, signer: Signer, predicateType: string, predicate: unknown): Promise<void> {
    await this.withTempDir(async (dir) => {
      const predicateFile = join(dir, 'predicate.json')
      await writeFile(predicateFile, JSON.stringify(predicate, null, 2))
      const keyFile = signer.kind === 'key' ? await keyPath(dir, signer.key, 'cosign.key') : undefined
      const env: Record<string, string> = signer.kind === 'key' ? { COSIGN_PASSWORD: signer.password ?? '' } : {}
      const res = await this.run(attestArgs(image, keyFile, predicateType, predicateFile), env)
      if (res.exitCode !== 0)
        throw new DeployError(`attesting ${image} failed: ${cosignReason(`${res.stdout}\n${res.stderr}`)}`)
    })
  }

  /**
   * The predicates of `image`'s attestations of `predicateType` whose signatures verify. None (no
   * attestation of that type, or none signed as `verifier` wants): an empty list. Any other
   * failure throws with cosign's reason.
   */
  async verifiedPredicates(image: string, verifier: Verifier, predicateType: string): Promise<unknown[]> {
    const key = verifier.kind === 'key' ? verifier.key : undefined
    return this.withKey(key, 'cosign.pub', async (keyFile) => {
      const how = keyFile ? { keyFile } : (verifier as Extract<Verifier, { kind: 'keyless' }>)
      const res = await this.run(verifyAttestationArgs(image, how, predicateType))
      if (res.exitCode !== 0) {
        const reason = cosignReason(res.stderr || res.stdout)
        if (NO_ATTESTATION.test(reason)) return []
        throw new DeployError(`the attestations of ${image} could not be verified: cosign: ${reason}`)
      }
      return predicatesOf(res.stdout, predicateType)
    })
  }

  /** Runs `fn` with the key's path: the given one, or a 0600 file holding the PEM, removed after. */
  private async withKey<T>(
    key: KeySource | undefined,
    name: string,
    fn: (keyFile: string | undefined) => Promise<T>,
  ): Promise<T> {
    if (!key) return fn(undefined)
    if ('path' in key) return fn(key.path)
    return this.withTempDir(async (dir) => fn(await keyPath(dir, key, name)))
  }

  /** A private temporary directory for key and predicate files, removed after `fn`. */
  private async withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'mlflow-k8s-deploy-cosign-'))
    try {
      return await fn(dir)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Runs cosign; exit code 127 (not on PATH) becomes the message that says how to add it. */
  private async run(args: string[], env: Readonly<Record<string, string>> = {}) {
    this.options.log.debug(`cosign ${args.join(' ')}`)
    const res = await this.options.exec(this.options.cosign ?? 'cosign', args, { env: { ...this.options.env, ...env } })
    if (res.exitCode === 127) throw new DeployError(COSIGN_MISSING)
    return res
  }
}
