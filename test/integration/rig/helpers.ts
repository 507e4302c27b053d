// What the rig's cluster suites share: bounded polling and a namespace that admits pods.
import type { CoreV1Api } from '@kubernetes/client-node'

/** Poll until `check` returns something truthy; fail with what `describe` says of the last try. */
export async function until<T>(
  what: string,
  check: () => Promise<T>,
  seconds = 120,
  describe?: () => Promise<unknown>,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value) return value
    if (Date.now() > deadline) {
      const last = describe ? await describe().catch((e) => String(e)) : undefined
      throw new Error(`${what}: not reached in ${seconds} s${last ? `; last: ${JSON.stringify(last)}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** Create namespace `name`, ready for pods: the ServiceAccount admission plugin admits them only
 * once the controller made `default`. */
export async function createPodNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } })
  await until('the default ServiceAccount', () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(
      () => true,
      () => false,
    ),
  )
}
