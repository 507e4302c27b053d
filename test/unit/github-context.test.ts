import { readRunContext } from '../../src/github-context.js'

test.each<[string, Record<string, string>, object]>([
  ['outside Actions', {}, { sha: undefined, repository: undefined, eventName: undefined, runUrl: undefined }],
  [
    'a push run',
    {
      GITHUB_SHA: 'abc',
      GITHUB_REPOSITORY: 'acme/wine',
      GITHUB_RUN_ID: '42',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_EVENT_NAME: 'push',
    },
    { sha: 'abc', repository: 'acme/wine', eventName: 'push', runUrl: 'https://github.com/acme/wine/actions/runs/42' },
  ],
  [
    'a re-run on GHES',
    {
      GITHUB_SERVER_URL: 'https://ghe.acme.io',
      GITHUB_REPOSITORY: 'ml/wine',
      GITHUB_RUN_ID: '7',
      GITHUB_RUN_ATTEMPT: '2',
    },
    { runUrl: 'https://ghe.acme.io/ml/wine/actions/runs/7/attempts/2' },
  ],
])('%s', (_c, env, expected) => expect(readRunContext(env)).toMatchObject(expected))
