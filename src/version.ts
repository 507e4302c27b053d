// This action's version (package.json's; a unit test keeps them equal). Part of every image
// identity, so a new generator never reuses an image an older one built.
export const VERSION = '0.1.0'
