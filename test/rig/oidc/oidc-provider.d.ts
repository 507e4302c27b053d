// oidc-provider ships no type declarations; the rig's IdP only needs it to type-check loosely.
declare module 'oidc-provider' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Provider: any
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const errors: any
  export default Provider
}
