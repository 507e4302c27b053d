#!/usr/bin/env node
// Entry of the bundle (dist/index.js). GitHub runs it with no arguments: the action. With
// arguments (`mlflow-k8s-deploy --model-uri …`) it is the command line.
import { realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { cli, readActionInputs, readVersion } from './cli.js'
import { run } from './main.js'

if (process.argv.length > 2) {
  // action.yml and package.json sit next to dist/ in the repository and in the npm package.
  const root = join(dirname(realpathSync(process.argv[1]!)), '..')
  const action = {
    inputs: readActionInputs(join(root, 'action.yml')),
    version: readVersion(join(root, 'package.json')),
  }
  const { code } = await cli(process.argv.slice(2), process.env, action)
  process.exitCode = code
} else {
  await run()
}
