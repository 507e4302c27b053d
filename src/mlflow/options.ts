// What the MLflow side is asked to connect with: the tracking server, TLS, and one way to
// authenticate. The action's inputs map onto these; nothing here knows about inputs.

/** How a GitHub Actions OIDC token is used with the MLflow server's identity provider. */
export type GithubTokenMode = 'none' | 'bearer' | 'token-exchange' | 'client-assertion'

export interface MlflowOptions {
  readonly trackingUri: string | undefined
  readonly registryUri: string | undefined
  readonly token: string | undefined
  readonly username: string | undefined
  readonly password: string | undefined
  readonly caCertPath: string | undefined
  readonly insecureTls: boolean
  readonly oidc: OidcOptions | undefined
}

export interface OidcOptions {
  readonly issuer?: string | undefined
  readonly clientId?: string | undefined
  readonly clientSecret?: string | undefined
  readonly scope?: string | undefined
  readonly audience?: string | undefined
  /** How the job's GitHub OIDC token is used: not at all, as is, exchanged, or as client assertion. */
  readonly githubToken: GithubTokenMode
  /** The GitHub token's audience; defaults to oidc-audience (bearer) or the issuer. */
  readonly githubAudience?: string | undefined
}
