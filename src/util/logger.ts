// The logging seam: lower layers log through this, never through @actions/core directly.
export interface Logger {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  /** Runs `fn` inside a collapsible log group (a stage). */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>
}

/** A logger that records lines, for tests. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = []
  info(m: string) {
    this.lines.push(m)
  }
  warning(m: string) {
    this.lines.push(`warning: ${m}`)
  }
  debug(m: string) {
    this.lines.push(`debug: ${m}`)
  }
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`## ${title}`)
    return fn()
  }
}
