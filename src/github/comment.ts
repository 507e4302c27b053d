// The one sticky PR comment per preview: found again by a hidden marker and edited in place, so a
// PR with twenty pushes still has one comment saying what runs where.
import type { IssueComment } from './client.js'

export function commentMarker(name: string): string {
  return `<!-- mlflow-k8s-deploy:${name} -->`
}

/** The action's comment for this preview (the first carrying the marker), if any. */
export function findSticky(comments: readonly IssueComment[], name: string): IssueComment | undefined {
  const marker = commentMarker(name)
  return comments.find((c) => c.body.split('\n', 1)[0]?.trim() === marker)
}

export interface PreviewFacts {
  readonly name: string
  readonly namespace: string
  readonly url: string | undefined
  readonly modelName: string | undefined
  readonly modelVersion: string | undefined
  readonly digest: string | undefined
  readonly revision: string | undefined
  /** e.g. "passed in 41 ms", "skipped" */
  readonly smoke: string
  readonly sha: string | undefined
  readonly expiresAt: string | undefined
  readonly runUrl: string | undefined
}

export function liveBody(f: PreviewFacts): string {
  const rows: [string, string | undefined][] = [
    ['URL', f.url],
    ['Model', f.modelName && `\`${f.modelName}\`${f.modelVersion ? ` version ${f.modelVersion}` : ''}`],
    ['Image digest', f.digest && `\`${f.digest}\``],
    ['Revision', f.revision && `\`${f.revision}\``],
    ['Smoke test', f.smoke],
    ['Commit', f.sha && `\`${f.sha.slice(0, 12)}\``],
    ['Expires', f.expiresAt],
  ]
  return [
    commentMarker(f.name),
    `### Preview \`${f.name}\` is live`,
    '',
    '| | |',
    '|---|---|',
    ...rows.filter(([, v]) => v).map(([k, v]) => `| ${k} | ${cell(v!)} |`),
    '',
    footer(f.namespace, f.runUrl),
  ].join('\n')
}

export function failedBody(f: { name: string; namespace: string; reason: string; runUrl?: string }): string {
  return [
    commentMarker(f.name),
    `### Preview \`${f.name}\` failed to deploy`,
    '',
    cell(f.reason),
    '',
    footer(f.namespace, f.runUrl),
  ].join('\n')
}

export function removedBody(f: { name: string; namespace: string; reason: string; runUrl?: string }): string {
  return [
    commentMarker(f.name),
    `### Preview \`${f.name}\` was removed`,
    '',
    `${f.reason}.`,
    '',
    footer(f.namespace, f.runUrl),
  ].join('\n')
}

/** `action: plan` on a pull request: what merging would deploy. */
export function planBody(f: { name: string; namespace: string; plan: string; runUrl?: string }): string {
  return [
    commentMarker(`plan-${f.name}`),
    `### Plan for \`${f.namespace}/${f.name}\``,
    '',
    '```',
    f.plan.replace(/```/g, "'''"),
    '```',
    '',
    footer(f.namespace, f.runUrl),
  ].join('\n')
}

function footer(namespace: string, runUrl: string | undefined): string {
  return `<sub>mlflow-k8s-deploy · namespace \`${namespace}\`${runUrl ? ` · [workflow run](${runUrl})` : ''}</sub>`
}

/** Keeps a value inside one table cell. */
function cell(v: string): string {
  return v.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ')
}
