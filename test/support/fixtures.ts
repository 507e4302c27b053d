// Input objects with every field at its default, for tests and benchmarks that build them by hand.
import type { MlflowInputs, OidcInputs } from '../../src/inputs.js'
import type { RenderOptions } from '../../src/k8s/render.js'

export function mlflowInputs(over: Partial<MlflowInputs> & Pick<MlflowInputs, 'trackingUri'>): MlflowInputs {
  return {
    registryUri: undefined,
    token: undefined,
    username: undefined,
    password: undefined,
    caCertPath: undefined,
    insecureTls: false,
    oidc: undefined,
    ...over,
  }
}

export function renderOptions(over: Partial<RenderOptions> = {}): RenderOptions {
  return {
    shape: 'knative',
    env: [],
    labels: {},
    annotations: {},
    resources: undefined,
    minScale: undefined,
    maxScale: undefined,
    ...over,
  }
}

export function oidcInputs(over: Partial<OidcInputs> = {}): OidcInputs {
  return {
    issuer: undefined,
    clientId: undefined,
    clientSecret: undefined,
    scope: undefined,
    audience: undefined,
    githubToken: 'none',
    githubAudience: undefined,
    ...over,
  }
}
