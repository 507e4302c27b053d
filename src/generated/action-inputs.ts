// Generated from action.yml by scripts/gen-action-metadata.mjs (npm run metadata): do not edit.

/** What the parser needs from one input of action.yml. */
export interface ActionInput {
  /** The literal default: the runner passes it as INPUT_<NAME>; the parser applies it everywhere else. */
  readonly default?: string
  /** The environment variable read when the input is empty ("Falls back to …" in its description). */
  readonly env?: string
}

/** Every input of action.yml, in its order. */
export const ACTION_INPUTS = {
  'model-uri': {},
  'tracking-uri': { env: 'MLFLOW_TRACKING_URI' },
  'registry-uri': { env: 'MLFLOW_REGISTRY_URI' },
  'mlflow-token': { env: 'MLFLOW_TRACKING_TOKEN' },
  'mlflow-username': { env: 'MLFLOW_TRACKING_USERNAME' },
  'mlflow-password': { env: 'MLFLOW_TRACKING_PASSWORD' },
  'mlflow-ca-cert': { env: 'MLFLOW_TRACKING_SERVER_CERT_PATH' },
  'mlflow-insecure-tls': { env: 'MLFLOW_TRACKING_INSECURE_TLS' },
  'oidc-issuer': { env: 'MLFLOW_TRACKING_OIDC_ISSUER' },
  'oidc-client-id': { env: 'MLFLOW_TRACKING_OIDC_CLIENT_ID' },
  'oidc-client-secret': { env: 'MLFLOW_TRACKING_OIDC_CLIENT_SECRET' },
  'oidc-scope': { env: 'MLFLOW_TRACKING_OIDC_SCOPE' },
  'oidc-audience': { env: 'MLFLOW_TRACKING_OIDC_AUDIENCE' },
  'artifacts-destination': {},
  'oidc-github-token': { default: 'none' },
  'oidc-github-audience': {},
  'image-repository': {},
  'image-tag': {},
  runtime: { default: 'kserve' },
  'base-image': {},
  build: { default: 'auto' },
  platforms: {},
  'build-args': {},
  'cache-from': {},
  'cache-to': {},
  'build-network': {},
  builder: {},
  sbom: { default: 'false' },
  provenance: {},
  compression: { default: 'gzip' },
  'model-cache': { default: 'auto' },
  sign: { default: 'false' },
  'signing-key': {},
  'verify-signature': {},
  target: { default: 'knative' },
  serving: { default: 'image' },
  name: {},
  namespace: { default: 'default' },
  'kube-context': {},
  'take-over': { default: 'false' },
  kubeconfig: {},
  template: {},
  env: {},
  labels: {},
  annotations: {},
  resources: {},
  'min-scale': {},
  'max-scale': {},
  'image-pull-secrets': {},
  'service-account': {},
  action: { default: 'deploy' },
  wait: { default: 'true' },
  timeout: { default: '10m' },
  'wait-window': { default: '30s' },
  'smoke-test': { default: 'true' },
  'smoke-test-input': {},
  'ingress-host': {},
  'ingress-address': {},
  'traffic-percent': {},
  tag: {},
  'promote-alias': {},
  preview: { default: 'false' },
  'pr-number': {},
  'preview-ttl': {},
  'cleanup-older-than': {},
  comment: { default: 'true' },
  environment: {},
  'github-token': {},
} as const satisfies Readonly<Record<string, ActionInput>>

export type InputName = keyof typeof ACTION_INPUTS

/** The inputs with a default: never empty when read. */
export type DefaultedInput = {
  [N in InputName]: (typeof ACTION_INPUTS)[N] extends { readonly default: string } ? N : never
}[InputName]
