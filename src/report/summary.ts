import { formatDuration } from '../util/duration.js'
import type { Report } from './report.js'

const ICON = { ok: '✅', failed: '❌', skipped: '⏭️' } as const

/** The job summary as Markdown: a pure function of the report. */
export function renderSummary(report: Report, title: string): string {
  const o = report.outputs
  const lines = [`## ${title}`, '']
  if (report.failure) lines.push(...failureLines(report.failure), '')
  const facts: [string, string | undefined][] = [
    ['Endpoint', o.url],
    ['Model', o['model-name'] && `${o['model-name']}${o['model-version'] ? ` v${o['model-version']}` : ''}`],
    ['Run', o['run-id']],
    ['Image', o.image],
    ['Image cache hit', o['cache-hit']],
    ['Revision', o.revision],
    ['Smoke test', report.smokeTest],
    ['Traffic before', report.traffic?.before],
    ['Traffic after', report.traffic?.after],
    ['Service', o.name && `${o.namespace}/${o.name}`],
  ]
  const known = facts.filter(([, v]) => v)
  if (known.length) {
    lines.push('| | |', '|---|---|', ...known.map(([k, v]) => `| ${k} | ${escapeCell(v!)} |`), '')
  }
  if (report.plan) lines.push('### Plan', '', '```', report.plan, '```', '')
  if (report.stages.length) {
    lines.push('| Stage | Result | Decision | Duration |', '|---|---|---|---|')
    for (const s of report.stages) {
      lines.push(
        `| ${s.name} | ${ICON[s.status]} ${s.status} | ${escapeCell(s.decision)} | ${formatDuration(s.durationMs)} |`,
      )
    }
    lines.push('')
  }
  return lines.join('\n')
}

/** The failure's first line in bold; evidence after it (pip's output) verbatim in a code block. */
function failureLines(failure: string): string[] {
  const [first, ...rest] = failure.split('\n')
  if (!rest.length) return [`**Failed:** ${escapeCell(failure)}`]
  // A fence longer than any run of backticks in the evidence.
  const fence = '`'.repeat(Math.max(3, ...(failure.match(/`+/g) ?? []).map((m) => m.length + 1)))
  return [`**Failed:** ${escapeCell(first!)}`, '', fence, ...rest, fence]
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}
