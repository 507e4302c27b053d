import { deriveName, nameProblem } from '../../src/k8s/naming.js'

describe('deriveName', () => {
  test.each<[string, 'knative' | 'kserve', RegExp]>([
    ['wine-classifier', 'knative', /^wine-classifier$/],
    ['Wine.Classifier-v2', 'knative', /^wine-classifier-v2-[0-9a-f]{6}$/],
    ['vin rouge ü', 'knative', /^vin-rouge-u-[0-9a-f]{6}$/],
    ['123-model', 'knative', /^model-[0-9a-f]{6}$/],
    ['🍷', 'kserve', /^model-[0-9a-f]{6}$/],
    ['a'.repeat(80), 'knative', /^a{50}-[0-9a-f]{6}$/],
    ['a'.repeat(80), 'kserve', /^a{40}-[0-9a-f]{6}$/],
  ])('%s (%s)', (text, target, expected) => {
    const name = deriveName(text, target)
    expect(name).toMatch(expected)
    expect(nameProblem(name, target)).toBeUndefined()
  })
  test('different models never share a derived name', () => {
    expect(deriveName('Wine', 'knative')).not.toBe(deriveName('wine', 'knative'))
    expect(deriveName('a'.repeat(80) + 'x', 'knative')).not.toBe(deriveName('a'.repeat(80) + 'y', 'knative'))
  })
})
