// The serving contract: what the image built by image/ promises and what the objects rendered by
// k8s/ (and the smoke test) rely on. One place, so the two sides cannot drift apart.

/** The port the model server listens on in the serving image (Knative's default PORT too). */
export const SERVING_PORT = 8080

/** Answers 200 once the server is up (V2 inference protocol, server readiness): the image's HEALTHCHECK. */
export const READINESS_PATH = '/v2/health/ready'

/**
 * The model's own readiness (V2 inference protocol, model readiness). Probes use it: the servers
 * answer READINESS_PATH before the model has loaded, and traffic would move to a revision that
 * cannot serve yet.
 */
export function modelReadyPath(modelName: string): string {
  return `/v2/models/${encodeURIComponent(modelName)}/ready`
}

/**
 * The variable that names the model the server serves, read by both runtimes in the image:
 * deployments set it to the object's name, so users call /v2/models/<name>/infer.
 */
export const MODEL_NAME_VARIABLE = 'MLSERVER_MODEL_NAME'
