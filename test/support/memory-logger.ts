// A logger that records lines, for tests and benchmarks (never shipped in the bundle).
import type { Logger } from '../../src/util/logger.js'

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
