// Lets Node run the TypeScript sources directly (with --experimental-transform-types): imports
// are written `./x.js`, as tsc wants, and resolve here to `./x.ts` when no .js exists.
import { register } from 'node:module'

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return next(specifier.slice(0, -3) + '.ts', context)
    }
    throw err
  }
}`),
  import.meta.url,
)
