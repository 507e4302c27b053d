// The decideCache inputs the cache-rule tables start from (identity.test.ts, platforms.test.ts).
import type { CacheRuleInput } from '../../../src/image/identity.js'

export const IDENTITY = 'a'.repeat(64)
export const DIGEST = 'sha256:' + 'd'.repeat(64)

/** Policy auto, a derived tag, nothing in the registry; then `over`. */
export const cacheInput = (over: Partial<CacheRuleInput>): CacheRuleInput => ({
  policy: 'auto',
  identity: IDENTITY,
  ref: '127.0.0.1:5001/wine:v2-abc',
  userTag: false,
  remote: { exists: false },
  ...over,
})
