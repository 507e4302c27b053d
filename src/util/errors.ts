// Error types that reach the user. Each carries a message that says what to fix (one line, or a
// first line followed by evidence); run-action.ts reports only the message (the stack goes to the
// debug log).

/** A bad input value: names the input and what is allowed. */
export class InputError extends Error {
  override readonly name = 'InputError'
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`\`${input}\`: ${message}`)
  }
}

/** A failure of an outside system or a decision, with the evidence in the message. */
export class DeployError extends Error {
  override readonly name = 'DeployError'
}

/**
 * The whole message: multi-line evidence (the end of pip's output) is part of it. The Actions
 * edge encodes newlines in the ::error:: annotation (%0A), so nothing is cut and nothing injected.
 */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.trim() || err.name
  return String(err)
}
