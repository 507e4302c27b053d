import { NotImplementedError } from '../util/errors.js'
import type { Stage } from './context.js'

/** `action: cleanup`: deletes pull-request previews past their TTL. */
export const cleanupPreviews: Stage = async () => {
  throw new NotImplementedError('cleanup previews')
}
