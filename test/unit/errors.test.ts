import { DeployError, InputError, errorMessage } from '../../src/util/errors.js'

describe('errorMessage keeps the whole message', () => {
  test.each<[string, unknown, string]>([
    ['one line', new DeployError('registry refused'), 'registry refused'],
    [
      'multi-line evidence',
      new DeployError("the model's requirements failed to install. The end of pip's output:\nERROR: a\nERROR: b"),
      "the model's requirements failed to install. The end of pip's output:\nERROR: a\nERROR: b",
    ],
    ['surrounding blank lines trimmed', new Error('\nboom\n\n'), 'boom'],
    ['an empty message: the error type', new DeployError(''), 'DeployError'],
    ['an input error stays one line', new InputError('labels', 'bad'), '`labels`: bad'],
    ['not an Error', 'plain string', 'plain string'],
  ])('%s', (_case, err, expected) => expect(errorMessage(err)).toBe(expected))
})
