// Every way the action authenticates to MLflow, against the real basic-auth and OIDC-protected
// servers, the rig's OpenID provider and its GitHub-style ID-token service; and the credential
// faults those servers really produce. Nothing is skipped.
import { parseModelUri, type ModelRef } from '../../../src/mlflow/model-uri.js'
import { rigEnv } from '../rig-env.js'
import { SLOW, build, githubEnv, inputs, oidcInputs } from './helpers.js'

const ref = (uri: string): ModelRef => parseModelUri(uri) as ModelRef
const champion = () => ref(`models:/${rigEnv('FIXTURE_MODEL')}@champion`)

describe('basic-auth MLflow', () => {
  test(
    'a reader resolves the model',
    async () => {
      const b = build(
        inputs('basic', {
          username: rigEnv('MLFLOW_BASIC_READER_USER'),
          password: rigEnv('MLFLOW_BASIC_READER_PASSWORD'),
        }),
      )
      const r = await b.mlflow.resolve(champion())
      expect(r.version).toBe('1')
      await b.close()
    },
    SLOW,
  )

  test(
    'a wrong password: 401 naming the user, never the password',
    async () => {
      const b = build(inputs('basic', { username: rigEnv('MLFLOW_BASIC_READER_USER'), password: 'wrong-password-123' }))
      const err = await b.mlflow.resolve(champion()).catch((e) => e)
      expect(err.message).toBe(
        `MLflow at ${rigEnv('MLFLOW_BASIC_URI')} rejected the credentials (401; plain text instead of MLflow JSON: "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate."); sent basic auth as user "${rigEnv('MLFLOW_BASIC_READER_USER')}" (mlflow-username/mlflow-password): check that they are right and current`,
      )
      expect(err.message).not.toContain('wrong-password-123')
      await b.close()
    },
    SLOW,
  )

  test(
    'no credentials: 401 saying which inputs to set',
    async () => {
      const b = build(inputs('basic'))
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        /requires authentication \(401; .*\): set mlflow-token, mlflow-username\/mlflow-password or oidc-\* inputs/,
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'a user without permission on the model: 403 naming the user',
    async () => {
      const b = build(
        inputs('basic', {
          username: rigEnv('MLFLOW_BASIC_NOPERM_USER'),
          password: rigEnv('MLFLOW_BASIC_NOPERM_PASSWORD'),
        }),
      )
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        new RegExp(`denied access \\(403; .*\\); sent basic auth as user "${rigEnv('MLFLOW_BASIC_NOPERM_USER')}"`),
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'a bearer token is not what basic-auth MLflow takes: 401 naming mlflow-token',
    async () => {
      const b = build(inputs('basic', { token: 'not-a-basic-credential' }))
      const err = await b.mlflow.resolve(champion()).catch((e) => e)
      expect(err.message).toMatch(/rejected the credentials \(401; .*\); sent bearer token from mlflow-token/)
      expect(err.message).not.toContain('not-a-basic-credential')
      await b.close()
    },
    SLOW,
  )
})

describe('OIDC-protected MLflow', () => {
  const issuer = () => rigEnv('OIDC_ISSUER')
  const audience = () => rigEnv('OIDC_AUDIENCE')

  test(
    'client credentials with discovery: resolves, token masked',
    async () => {
      const b = build(
        inputs('oidc', {
          oidc: oidcInputs({
            issuer: issuer(),
            clientId: rigEnv('OIDC_CLIENT_ID'),
            clientSecret: rigEnv('OIDC_CLIENT_SECRET'),
            audience: audience(),
          }),
        }),
      )
      const r = await b.mlflow.resolve(champion())
      expect(r.version).toBe('1')
      expect(b.masked).toHaveLength(1)
      expect(b.masked[0]).toMatch(/^eyJ/)
      await b.close()
    },
    SLOW,
  )

  test(
    'a wrong client secret: the token endpoint error and what to fix',
    async () => {
      const b = build(
        inputs('oidc', {
          oidc: oidcInputs({ issuer: issuer(), clientId: rigEnv('OIDC_CLIENT_ID'), clientSecret: 'wrong-secret-xyz' }),
        }),
      )
      const err = await b.mlflow.resolve(champion()).catch((e) => e)
      expect(err.message).toMatch(
        /^token endpoint http:\S+ refused the client-credentials request: invalid_client .*; check oidc-client-id and oidc-client-secret$/,
      )
      expect(err.message).not.toContain('wrong-secret-xyz')
      await b.close()
    },
    SLOW,
  )

  test(
    'an issuer without discovery (the plain MLflow) says so',
    async () => {
      const b = build(
        inputs('oidc', { oidc: oidcInputs({ issuer: rigEnv('MLFLOW_URI'), clientId: 'x', clientSecret: 'y' }) }),
      )
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        /OIDC issuer http:\S+ has no discovery document \(.*HTTP 404.*\): set oidc-issuer to the issuer URL itself/,
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'an issuer spelled differently from the one the IdP names (localhost for 127.0.0.1) is refused before any token request',
    async () => {
      // The rig's IdP answers discovery on any host name, always naming its one issuer.
      const real = issuer()
      const configured = real.replace('127.0.0.1', 'localhost')
      const b = build(
        inputs('oidc', {
          oidc: oidcInputs({
            issuer: configured,
            clientId: rigEnv('OIDC_CLIENT_ID'),
            clientSecret: rigEnv('OIDC_CLIENT_SECRET'),
            audience: audience(),
          }),
        }),
      )
      const err = await b.mlflow.resolve(champion()).catch((e: Error) => e)
      expect((err as Error).message).toBe(
        `the OIDC discovery document ${configured}/.well-known/openid-configuration names issuer "${real}", not "${configured}" as configured in oidc-issuer (or MLFLOW_TRACKING_OIDC_ISSUER): they must be identical (OpenID Connect Discovery §4.3, RFC 8414 §3.3); set oidc-issuer to the IdP's issuer exactly`,
      )
      expect(b.masked).toEqual([])
      await b.close()
    },
    SLOW,
  )

  test(
    'no credentials: the plugin says authentication is required',
    async () => {
      const b = build(inputs('oidc'))
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        /requires authentication \(401; Authentication required\)/,
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'GitHub token exchanged at the IdP (RFC 8693)',
    async () => {
      const b = build(
        inputs('oidc', { oidc: oidcInputs({ issuer: issuer(), audience: audience(), githubToken: 'token-exchange' }) }),
      )
      const r = await b.mlflow.resolve(champion())
      expect(r.version).toBe('1')
      expect(b.idTokenAudiences).toEqual([rigEnv('GHA_EXCHANGE_AUDIENCE')])
      expect(b.masked).toHaveLength(2) // the GitHub token and the access token
      await b.close()
    },
    SLOW,
  )

  test(
    'GitHub token as client assertion (RFC 7523) of the federated client',
    async () => {
      const b = build(
        inputs('oidc', {
          oidc: oidcInputs({
            issuer: issuer(),
            clientId: rigEnv('OIDC_FEDERATED_CLIENT_ID'),
            audience: audience(),
            githubToken: 'client-assertion',
          }),
        }),
      )
      expect((await b.mlflow.resolve(champion())).version).toBe('1')
      await b.close()
    },
    SLOW,
  )

  test(
    'a GitHub token with an audience the IdP does not trust is refused with what to fix',
    async () => {
      const b = build(
        inputs('oidc', {
          oidc: oidcInputs({
            issuer: issuer(),
            audience: audience(),
            githubToken: 'token-exchange',
            githubAudience: 'https://not-trusted.example',
          }),
        }),
      )
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        /refused the token-exchange request: invalid_grant .*check its trust policy \(issuer, subject\) and oidc-github-audience/,
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'GitHub token sent as bearer to MLflow',
    async () => {
      const b = build(inputs('oidc', { oidc: oidcInputs({ githubToken: 'bearer', githubAudience: audience() }) }))
      const outcome = await b.mlflow.resolve(champion()).then(
        (r) => `resolved v${r.version}`,
        (e: Error) => e.message,
      )
      // The rig's OIDC MLflow trusts the GitHub-style issuer too (multi-provider config).
      expect(outcome).toBe('resolved v1')
      await b.close()
    },
    SLOW,
  )

  test(
    'no id-token permission: the message says to add it',
    async () => {
      const b = build(inputs('oidc', { oidc: oidcInputs({ issuer: issuer(), githubToken: 'token-exchange' }) }), {})
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        "oidc-github-token: token-exchange needs the job's GitHub OIDC token, but ACTIONS_ID_TOKEN_REQUEST_URL is not set: add `permissions: id-token: write` to the job",
      )
      await b.close()
    },
    SLOW,
  )

  test(
    'a wrong ACTIONS_ID_TOKEN_REQUEST_TOKEN is reported',
    async () => {
      const env = { ...githubEnv(), ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong' }
      const b = build(inputs('oidc', { oidc: oidcInputs({ issuer: issuer(), githubToken: 'token-exchange' }) }), env)
      await expect(b.mlflow.resolve(champion())).rejects.toThrow(
        /could not get the job's GitHub OIDC token for audience http:\S+: ID token request failed with HTTP 401/,
      )
      await b.close()
    },
    SLOW,
  )
})
