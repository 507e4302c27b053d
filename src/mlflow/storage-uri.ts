import { DeployError } from '../util/errors.js'

/**
 * Where KServe's storage initializer can read the model. It cannot read models:/, runs:/ or
 * mlflow-artifacts:/ (protocols 4.4): a proxied location is mapped onto the tracking server's
 * --artifacts-destination; a real storage URI (s3://, gs://, file://…) is used as it is.
 */
export function storageUriFor(artifactUri: string, artifactsDestination: string | undefined): string {
  const proxied = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(artifactUri)
  if (proxied) {
    if (!artifactsDestination) {
      throw new DeployError(
        `the model is stored behind the tracking server (${artifactUri}), which KServe cannot read: set artifacts-destination to the server's --artifacts-destination (e.g. s3://bucket/mlartifacts)`,
      )
    }
    return `${artifactsDestination.replace(/\/+$/, '')}/${proxied[1]}`
  }
  if (/^(models|runs):/.test(artifactUri)) {
    throw new DeployError(`the model's location ${artifactUri} is not a storage URI KServe can read`)
  }
  if (artifactUri.startsWith('/')) return `file://${artifactUri}`
  return artifactUri
}
