import {
  buildServingPayload,
  parseInputExample,
  parseMlmodel,
  parsePythonEnv,
  parseRequirements,
  type InputExampleInfo,
} from '../../../src/mlflow/mlmodel.js'
import { canonicalStage, highestVersion, joinUri, listSome } from '../../../src/mlflow/resolve.js'

const MLFLOW3 = `artifact_path: mlflow-artifacts:/4/models/m-0123456789abcdef0123456789abcdef/artifacts
flavors:
  python_function:
    env: {conda: conda.yaml, virtualenv: python_env.yaml}
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.9
  sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle, sklearn_version: 1.5.2}
mlflow_version: 3.4.0
model_id: m-0123456789abcdef0123456789abcdef
model_uuid: m-0123456789abcdef0123456789abcdef
run_id: 9d1f2c
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  serving_input_path: serving_input_example.json
  type: dataframe
signature:
  inputs: '[{"type": "double", "name": "amount", "required": true}, {"type": "long", "name": "age", "required": false}, {"type": "array", "items": {"type": "string"}, "name": "tags"}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: '[{"name": "temperature", "type": "float", "default": 0.7, "shape": null}]'
`

const MLFLOW1 = `artifact_path: model
flavors:
  python_function:
    env: conda.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.7.3
  sklearn: {pickled_model: model.pkl, sklearn_version: 0.20.3}
run_id: abc
utc_time_created: '2019-06-01 10:00:00'
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}, "name": "image"}]'
  outputs: null
`

describe('parseMlmodel', () => {
  test('MLflow 3: flavors, env map, column signature with required and complex types, tensors, params, example info', () => {
    const m = parseMlmodel(MLFLOW3)
    expect(Object.keys(m.flavors)).toEqual(['python_function', 'sklearn'])
    expect(m.pyfunc).toMatchObject({
      loaderModule: 'mlflow.sklearn',
      pythonVersion: '3.11.9',
      env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
    })
    expect(m.modelId).toBe('m-0123456789abcdef0123456789abcdef')
    expect(m.mlflowVersion).toBe('3.4.0')
    expect(m.signature?.inputs).toEqual([
      {
        kind: 'column',
        name: 'amount',
        type: 'double',
        required: true,
        raw: { type: 'double', name: 'amount', required: true },
      },
      {
        kind: 'column',
        name: 'age',
        type: 'long',
        required: false,
        raw: { type: 'long', name: 'age', required: false },
      },
      {
        kind: 'column',
        name: 'tags',
        type: 'array',
        required: true,
        raw: { type: 'array', items: { type: 'string' }, name: 'tags' },
      },
    ])
    expect(m.signature?.outputs).toEqual([{ kind: 'tensor', name: undefined, dtype: 'int64', shape: [-1] }])
    expect(m.signature?.params).toEqual([{ name: 'temperature', type: 'float', default: 0.7, shape: null }])
    expect(m.inputExample).toEqual({
      artifactPath: 'input_example.json',
      type: 'dataframe',
      pandasOrient: 'split',
      format: undefined,
      servingInputPath: 'serving_input_example.json',
      hasParams: false,
    })
  })

  test('MLflow 1.x: env as a string, tensor signature, no outputs', () => {
    const m = parseMlmodel(MLFLOW1)
    expect(m.pyfunc?.env).toEqual({ conda: 'conda.yaml' })
    expect(m.signature?.inputs).toEqual([{ kind: 'tensor', name: 'image', dtype: 'float32', shape: [-1, 28, 28] }])
    expect(m.signature?.outputs).toBeUndefined()
    expect(m.inputExample).toBeUndefined()
  })

  test.each([
    ['not: [valid', /MLmodel is not valid YAML/],
    ['- a list', /not a YAML mapping/],
    ['mlflow_version: 2.0.1', /MLmodel has no flavors/],
    ["flavors: {x: {}}\nsignature: {inputs: '[not json'}", /signature.inputs is not valid JSON/],
  ])('rejects %j', (text, expected) => expect(() => parseMlmodel(text)).toThrow(expected))
})

describe('input examples in every layout', () => {
  const info = (over: Partial<InputExampleInfo>): InputExampleInfo => ({
    artifactPath: 'input_example.json',
    hasParams: false,
    ...over,
  })
  const split = { columns: ['a', 'b'], data: [[1, 2]] }

  test.each([
    [
      'dataframe split, no serving file (older 2.x)',
      info({ type: 'dataframe', pandasOrient: 'split' }),
      split,
      undefined,
      { dataframe_split: split },
    ],
    [
      'dataframe values',
      info({ type: 'dataframe', pandasOrient: 'values' }),
      { data: [[1, 2]] },
      undefined,
      { dataframe_split: { data: [[1, 2]] } },
    ],
    [
      'ndarray tf-serving, inputs already wrapped',
      info({ type: 'ndarray', format: 'tf-serving' }),
      { inputs: [[1, 2]] },
      undefined,
      { inputs: [[1, 2]] },
    ],
    [
      'ndarray tf-serving, named tensors',
      info({ type: 'ndarray', format: 'tf-serving' }),
      { inputs: { x: [1] } },
      undefined,
      { inputs: { x: [1] } },
    ],
    [
      'json_object',
      info({ type: 'json_object' }),
      { messages: [{ role: 'user', content: 'hi' }] },
      undefined,
      { inputs: { messages: [{ role: 'user', content: 'hi' }] } },
    ],
    [
      'serving_input_example.json present (3.x): taken as is',
      info({ type: 'dataframe', pandasOrient: 'split', servingInputPath: 'serving_input_example.json' }),
      split,
      { dataframe_split: { columns: ['a', 'b'], data: [[1, 2]] } },
      { dataframe_split: { columns: ['a', 'b'], data: [[1, 2]] } },
    ],
    [
      'serving_input_payload.json (late 2.1x name)',
      info({ type: 'dataframe', pandasOrient: 'split', servingInputPath: 'serving_input_payload.json' }),
      split,
      { dataframe_split: split },
      { dataframe_split: split },
    ],
    [
      'sparse matrix: no payload to build',
      info({ type: 'sparse_matrix_csr' }),
      { data: [], indices: [], indptr: [], shape: [] },
      undefined,
      undefined,
    ],
  ])('%s', (_title, i, example, serving, expected) => {
    const parsed = parseInputExample(
      i,
      JSON.stringify(example),
      serving === undefined ? undefined : JSON.stringify(serving),
    )
    expect(parsed?.example).toEqual(example)
    expect(parsed?.servingPayload).toEqual(expected)
  })

  test('params are split off the example and put on the payload', () => {
    const parsed = parseInputExample(
      info({ type: 'dataframe', pandasOrient: 'split', hasParams: true }),
      JSON.stringify({ inputs: split, params: { t: 1 } }),
    )
    expect(parsed).toMatchObject({
      example: split,
      params: { t: 1 },
      servingPayload: { dataframe_split: split, params: { t: 1 } },
    })
  })

  test('no files → undefined; bad JSON → error naming the file', () => {
    expect(parseInputExample(info({}), undefined)).toBeUndefined()
    expect(() => parseInputExample(info({}), '{')).toThrow('input_example.json of the model is not valid JSON')
    expect(buildServingPayload(info({ type: 'dataframe' }), undefined)).toBeUndefined()
  })
})

test('parseRequirements drops comments and blanks', () => {
  expect(parseRequirements('# generated\nmlflow==3.17.2\n\nscikit-learn==1.5.2  # pinned\n-r extra.txt\r\n')).toEqual([
    'mlflow==3.17.2',
    'scikit-learn==1.5.2',
    '-r extra.txt',
  ])
})

test('parsePythonEnv', () => {
  expect(
    parsePythonEnv(
      'python: 3.11.9\nbuild_dependencies:\n- pip==24.0\n- setuptools\ndependencies:\n- -r requirements.txt\n',
    ),
  ).toEqual({
    python: '3.11.9',
    buildDependencies: ['pip==24.0', 'setuptools'],
    dependencies: ['-r requirements.txt'],
  })
})

describe('resolution helpers', () => {
  test.each([
    ['production', 'Production'],
    ['STAGING', 'Staging'],
    ['none', 'None'],
    ['archived', 'Archived'],
    ['prod', undefined],
    ['champion', undefined],
  ])('canonicalStage(%s) = %s', (s, expected) => expect(canonicalStage(s)).toBe(expected))

  test('highestVersion compares numbers, not strings', () => {
    expect(
      highestVersion([
        { name: 'm', version: '9' },
        { name: 'm', version: '10' },
        { name: 'm', version: '2' },
      ])?.version,
    ).toBe('10')
    expect(highestVersion([])).toBeUndefined()
  })

  test.each([
    ['mlflow-artifacts:/1/r/artifacts', 'model', 'mlflow-artifacts:/1/r/artifacts/model'],
    ['mlflow-artifacts:/1/r/artifacts/', '/model/', 'mlflow-artifacts:/1/r/artifacts/model'],
    ['s3://b/x', '', 's3://b/x'],
  ])('joinUri(%s, %s)', (root, path, expected) => expect(joinUri(root, path)).toBe(expected))

  test('listSome stays one line', () => {
    expect(listSome(['a', 'b'])).toBe('a, b')
    expect(listSome(['1', '2', '3', '4'], 2)).toBe('1, 2 and 2 more')
  })
})
