import { parseInputs } from '../../../src/inputs.js'
import type { Services, Stage, StageContext } from '../../../src/pipeline/context.js'
import { runPipeline, StageFailure, StageTable } from '../../../src/pipeline/run.js'
import { Report } from '../../../src/report/report.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const inputs = parseInputs({
  get: (n) =>
    ({
      'model-uri': 'models:/wine-classifier@champion',
      'tracking-uri': 'http://mlflow',
      'image-repository': 'r.io/w',
    })[n] ?? '',
  env: {},
  mask: () => {},
})

function context(signal = new AbortController().signal): StageContext {
  return { inputs, services: {} as Services, log: new MemoryLogger(), signal, report: new Report(), state: {} }
}
const clock = () => {
  let t = 0
  return { now: () => (t += 10) }
}

test('stages run in order; each is recorded with its decision, status and duration', async () => {
  const ran: string[] = []
  const stage =
    (name: string, skipped = false): Stage =>
    async () => {
      ran.push(name)
      return { decision: `${name} decided`, skipped }
    }
  const ctx = context()
  await runPipeline(ctx, clock(), [
    ['one', stage('one')],
    ['two', stage('two', true)],
  ])
  expect(ran).toEqual(['one', 'two'])
  expect(ctx.report.stages).toEqual([
    { name: 'one', status: 'ok', decision: 'one decided', durationMs: 10 },
    { name: 'two', status: 'skipped', decision: 'two decided', durationMs: 10 },
  ])
  expect((ctx.log as MemoryLogger).lines).toEqual(['## one', 'one: one decided', '## two', 'two: two decided'])
})

test('a failure names the stage, stops the pipeline, keeps the outputs known so far and runs the failure hook once', async () => {
  const ctx = context()
  let hooked = 0
  let laterRan = false
  const later: Stage = async () => {
    laterRan = true
    return { decision: 'ran' }
  }
  const err = await runPipeline(
    ctx,
    clock(),
    [
      ['apply', async () => Promise.reject(new Error('RBAC forbids "deployer"\nmore detail'))],
      ['wait', later],
    ],
    async () => {
      hooked++
      return { decision: 'reported' }
    },
  ).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(StageFailure)
  // The whole message: evidence after the first line is kept.
  expect((err as Error).message).toBe('apply: RBAC forbids "deployer"\nmore detail')
  expect(laterRan).toBe(false)
  expect(hooked).toBe(1)
  expect(ctx.report.outputs).toEqual({ name: 'wine-classifier', namespace: 'default', 'model-name': 'wine-classifier' })
  expect(ctx.report.stages[0]).toMatchObject({
    name: 'apply',
    status: 'failed',
    decision: 'RBAC forbids "deployer"\nmore detail',
  })
})

test('a cancelled run starts no further stage', async () => {
  const controller = new AbortController()
  controller.abort(new Error('cancelled by SIGINT'))
  let ran = false
  const stage: Stage = async () => {
    ran = true
    return { decision: 'ran' }
  }
  await expect(runPipeline(context(controller.signal), clock(), [['one', stage]])).rejects.toThrow(
    'cancelled by SIGINT',
  )
  expect(ran).toBe(false)
})

test('the failure hook may restate the failure: the run fails with its account, the stage record keeps the cause', async () => {
  const ctx = context()
  const cause = new Error('Service x was deleted: nothing is rolled back, and nothing re-created')
  const err = await runPipeline(
    ctx,
    clock(),
    [['wait for ready', async () => Promise.reject(cause)]],
    async ({ state }) => {
      expect(state.failureCause).toBe(cause)
      state.failureRestated = 'pull request #7 was closed while this deploy ran'
      return { decision: 'left to the delete' }
    },
  ).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(StageFailure)
  expect((err as Error).message).toBe('wait for ready: pull request #7 was closed while this deploy ran')
  expect(((err as StageFailure).cause as Error).cause).toBe(cause)
  expect(ctx.report.stages[0]?.decision).toBe(cause.message)
})

test('each stage gets the results of the stages before it; a later result replaces an earlier one', async () => {
  const seen: object[] = []
  const first: Stage<object, { a: number; b: string }> = async () => ({ decision: 'first', a: 1, b: 'x' })
  const second: Stage<{ a: number }, { a: number }> = async (_ctx, { a }) => ({ decision: 'second', a: a + 1 })
  const third: Stage<{ a: number; b: string }> = async (_ctx, results) => {
    seen.push(results)
    return { decision: 'third' }
  }
  const table = StageTable.start().add('first', first).add('second', second).add('third', third)
  const ctx = context()
  let atFailure: object | undefined
  const fails: Stage = async () => Promise.reject(new Error('boom'))
  await runPipeline(ctx, clock(), [...table.stages, ['fails', fails]], async (_ctx, results: object) => {
    atFailure = results
    return { decision: 'reported' }
  }).catch(() => undefined)
  expect(seen).toEqual([{ a: 2, b: 'x' }])
  // The failure hook gets what the stages that ran found.
  expect(atFailure).toEqual({ a: 2, b: 'x' })
  expect(ctx.report.stages.map((s) => s.decision)).toEqual(['first', 'second', 'third', 'boom'])
})
