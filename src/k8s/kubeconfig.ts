// Which cluster to talk to: the `kubeconfig` input (its content or a path), else KUBECONFIG (as
// kubectl reads it: several files joined by ':'), else ~/.kube/config, else the in-cluster service
// account. `kube-context` picks a context by name, as mlflow-knative's `knative:/<context>` does.
// Messages name files and contexts, never the kubeconfig's content.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { DeployError, errorMessage } from '../util/errors.js'

export interface KubeconfigSource {
  readonly kubeconfig: { readonly content: string } | { readonly path: string } | undefined
  readonly kubeContext: string | undefined
}

export interface KubeconfigEnv {
  readonly KUBECONFIG?: string
  readonly HOME?: string
  readonly KUBERNETES_SERVICE_HOST?: string
  readonly KUBERNETES_SERVICE_PORT?: string
}

export interface LoadedKubeconfig {
  readonly config: KubeConfig
  /** Where it came from, safe to log: "the kubeconfig input", a path, or "in-cluster". */
  readonly origin: string
  readonly context: string
  readonly server: string
}

export function loadKubeconfig(source: KubeconfigSource, env: KubeconfigEnv = process.env): LoadedKubeconfig {
  const config = new KubeConfig()
  const origin = load(config, source, env)
  if (source.kubeContext) {
    const names = config.getContexts().map((c) => c.name)
    if (!names.includes(source.kubeContext)) {
      throw new DeployError(
        `kube-context "${source.kubeContext}" is not in ${origin}; its contexts are: ${names.join(', ') || '(none)'}`,
      )
    }
    config.setCurrentContext(source.kubeContext)
  }
  const context = config.getCurrentContext()
  const server = config.getCurrentCluster()?.server
  if (!context || !server) {
    throw new DeployError(`${origin} has no current context with a cluster: set kube-context to one of its contexts`)
  }
  return { config, origin, context, server }
}

function load(config: KubeConfig, source: KubeconfigSource, env: KubeconfigEnv): string {
  const given = source.kubeconfig
  if (given && 'content' in given) {
    // client-node parses YAML and JSON; its parse errors may quote the content, so they are dropped.
    try {
      config.loadFromString(given.content)
    } catch {
      throw new DeployError('the kubeconfig input is not a valid kubeconfig (YAML with clusters, users and contexts)')
    }
    return 'the kubeconfig input'
  }
  const files = given ? [given.path] : (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean)
  if (files.length === 0) {
    const home = env.HOME ?? homedir()
    const dflt = join(home, '.kube', 'config')
    if (home && existsSync(dflt)) files.push(dflt)
  }
  if (files.length > 0) {
    files.forEach((file, i) => {
      const part = i === 0 ? config : new KubeConfig()
      try {
        part.loadFromFile(file)
      } catch (err) {
        const why = (err as { code?: string }).code === 'ENOENT' ? 'file not found' : firstWords(errorMessage(err))
        throw new DeployError(`cannot read kubeconfig ${file}: ${why}`)
      }
      // As kubectl: the first file's current-context wins.
      if (i > 0) config.mergeConfig(part, true)
    })
    return given ? `kubeconfig ${files[0]}` : `KUBECONFIG (${files.join(delimiter)})`
  }
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
    config.loadFromCluster()
    return 'the in-cluster service account'
  }
  throw new DeployError(
    'no Kubernetes configuration: set the kubeconfig input (content or path) or KUBECONFIG, or run inside the cluster',
  )
}

// YAML errors can echo a line of the file (which may hold a token): keep only the description.
function firstWords(message: string): string {
  return message.split(/[:\n]/)[0]!.slice(0, 120)
}
