// The logging seam: lower layers log through this, never through @actions/core directly.
export interface Logger {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  /** Runs `fn` inside a collapsible log group (a stage). */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>
}
