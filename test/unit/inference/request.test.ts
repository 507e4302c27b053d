import {
  SmokeRequestError,
  buildV2Request,
  checkV2Response,
  type InputExampleLike,
} from '../../../src/inference/request.js'
import { parseSignature, type Signature } from '../../../src/mlflow/mlmodel.js'

/** A signature as MLflow writes it in MLmodel (the column/tensor JSON), parsed as the action does. */
type RawSignature = { inputs?: object[]; outputs?: object[] }
const sig = (raw: RawSignature | undefined): Signature | undefined => raw && parseSignature(raw)
const outputsOf = (raw: object[] | undefined) => sig(raw && { outputs: raw })?.outputs

// A scikit-learn classifier on the wine data, as mlflow.sklearn.log_model writes it.
const wine = parseSignature({
  inputs: [
    { type: 'double', name: 'alcohol', required: true },
    { type: 'double', name: 'malic_acid', required: true },
  ],
  outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'int64', shape: [-1] } }],
})
const wineExample: InputExampleLike = {
  type: 'dataframe',
  pandasOrient: 'split',
  content: {
    columns: ['alcohol', 'malic_acid'],
    data: [
      [13.2, 1.78],
      [12.4, 2.1],
    ],
  },
}

describe('buildV2Request', () => {
  test('dataframe split example: one input per column, datatypes from the signature', () => {
    const built = buildV2Request({ signature: wine, example: wineExample })
    expect(built.source).toBe('input example')
    expect(built.rows).toBe(2)
    expect(built.request).toEqual({
      parameters: { content_type: 'pd' },
      inputs: [
        { name: 'alcohol', shape: [2], datatype: 'FP64', data: [13.2, 12.4] },
        { name: 'malic_acid', shape: [2], datatype: 'FP64', data: [1.78, 2.1] },
      ],
    })
  })

  test.each<[string, RawSignature | undefined, InputExampleLike, unknown]>([
    [
      'values orient takes names from the signature; long stays INT64, strings carry str',
      {
        inputs: [
          { type: 'long', name: 'age' },
          { type: 'string', name: 'country' },
        ],
      },
      { type: 'dataframe', pandasOrient: 'values', content: { data: [[42, 'DE']] } },
      [
        { name: 'age', shape: [1], datatype: 'INT64', data: [42] },
        { name: 'country', shape: [1], datatype: 'BYTES', data: ['DE'], parameters: { content_type: 'str' } },
      ],
    ],
    [
      'no signature: datatypes guessed from the values',
      undefined,
      { type: 'dataframe', content: { columns: ['a', 'b', 'c'], data: [[1, 0.5, true]] } },
      [
        { name: 'a', shape: [1], datatype: 'INT64', data: [1] },
        { name: 'b', shape: [1], datatype: 'FP64', data: [0.5] },
        { name: 'c', shape: [1], datatype: 'BOOL', data: [true] },
      ],
    ],
    [
      'complex column types travel as JSON (pd_json)',
      { inputs: [{ type: 'array', name: 'tags', items: { type: 'string' } }] },
      { type: 'dataframe', content: { columns: ['tags'], data: [[['x', 'y']]] } },
      [{ name: 'tags', shape: [1], datatype: 'BYTES', data: ['["x","y"]'], parameters: { content_type: 'pd_json' } }],
    ],
    [
      'example with params: the data is under "inputs"',
      { inputs: [{ type: 'float', name: 'x' }] },
      { type: 'dataframe', content: { inputs: { columns: ['x'], data: [[1.5]] }, params: { k: 1 } } },
      [{ name: 'x', shape: [1], datatype: 'FP32', data: [1.5] }],
    ],
  ])('%s', (...[, signature, example, inputs]) => {
    expect(buildV2Request({ signature: sig(signature), example }).request.inputs).toEqual(inputs)
  })

  test('named tensors (tf-serving example): shapes from the nesting, dtypes from the spec', () => {
    const built = buildV2Request({
      signature: sig({
        inputs: [{ type: 'tensor', name: 'image', 'tensor-spec': { dtype: 'float32', shape: [-1, 2, 2] } }],
      }),
      example: {
        type: 'ndarray',
        content: {
          inputs: {
            image: [
              [
                [1, 2],
                [3, 4],
              ],
            ],
          },
        },
      },
    })
    expect(built.request.inputs).toEqual([{ name: 'image', shape: [1, 2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }])
    expect(built.rows).toBe(1)
  })

  test('an unnamed tensor example uses the np codec', () => {
    const built = buildV2Request({ example: { type: 'ndarray', content: { inputs: [[1, 2, 3]] } } })
    expect(built.request).toEqual({
      parameters: { content_type: 'np' },
      inputs: [{ name: 'input-0', shape: [1, 3], datatype: 'INT64', data: [1, 2, 3] }],
    })
  })

  test.each<[string, RawSignature, unknown]>([
    [
      'columns: one row of zeros, false and "a"',
      {
        inputs: [
          { type: 'double', name: 'x' },
          { type: 'integer', name: 'n' },
          { type: 'boolean', name: 'b' },
          { type: 'string', name: 's' },
          { type: 'binary', name: 'raw' },
        ],
      },
      {
        parameters: { content_type: 'pd' },
        inputs: [
          { name: 'x', shape: [1], datatype: 'FP64', data: [0] },
          { name: 'n', shape: [1], datatype: 'INT32', data: [0] },
          { name: 'b', shape: [1], datatype: 'BOOL', data: [false] },
          { name: 's', shape: [1], datatype: 'BYTES', data: ['a'], parameters: { content_type: 'str' } },
          { name: 'raw', shape: [1], datatype: 'BYTES', data: ['YQ=='], parameters: { content_type: 'base64' } },
        ],
      },
    ],
    [
      'an unnamed tensor: -1 becomes 1',
      { inputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float64', shape: [-1, 3] } }] },
      {
        parameters: { content_type: 'np' },
        inputs: [{ name: 'input-0', shape: [1, 3], datatype: 'FP64', data: [0, 0, 0] }],
      },
    ],
  ])('from the signature alone: %s', (...[, signature, request]) => {
    const built = buildV2Request({ signature: sig(signature) })
    expect(built.source).toBe('signature')
    expect(built.request).toEqual(request)
  })

  test('a json_object example without signature cannot be converted: ask for smoke-test-input', () => {
    expect(() => buildV2Request({ example: { type: 'json_object', content: { messages: [] } } })).toThrow(
      SmokeRequestError,
    )
    expect(() => buildV2Request({})).toThrow(/set smoke-test-input/)
  })

  test('smoke-test-input wins and is sent as given', () => {
    const override = { inputs: [{ name: 'x', shape: [3], datatype: 'FP32', data: [1, 2, 3] }] }
    const built = buildV2Request({ signature: wine, example: wineExample, override })
    expect(built).toEqual({ request: override, source: 'smoke-test-input', rows: 3 })
  })
})

describe('checkV2Response', () => {
  const out = (name: string, shape: number[], data: unknown[], datatype = 'INT64') => ({ name, shape, datatype, data })

  test.each<[string, unknown, Signature['outputs'], number | undefined, string[]]>([
    ['the wine answer', { outputs: [out('output-1', [2], [0, 1])] }, wine.outputs, 2, []],
    [
      'a trailing 1 is accepted for a 1-D tensor',
      { outputs: [out('output-1', [2, 1], [[0], [1]])] },
      wine.outputs,
      2,
      [],
    ],
    ['no outputs', { outputs: [] }, wine.outputs, 2, ['the response has no outputs']],
    [
      'wrong batch size',
      { outputs: [out('output-1', [1], [0])] },
      wine.outputs,
      2,
      ['output output-1 has shape [1], expected 2 row(s) first'],
    ],
    [
      'shape against a fixed dimension',
      { outputs: [out('output-1', [2, 2], [0.1, 0.9, 0.2, 0.8], 'FP64')] },
      outputsOf([{ type: 'tensor', 'tensor-spec': { dtype: 'float64', shape: [-1, 3] } }]),
      2,
      ['output output-1 has shape [2,2], the signature promises [-1,3]'],
    ],
    [
      'count',
      { outputs: [out('output-1', [2], [0, 1])] },
      outputsOf([
        { type: 'long', name: 'label' },
        { type: 'double', name: 'score' },
      ]),
      2,
      ['the signature promises 2 output(s), the response has 1 (output-1)'],
    ],
    [
      'names',
      { outputs: [out('label', [2], [0, 1]), out('proba', [2], [0.1, 0.2], 'FP64')] },
      outputsOf([
        { type: 'long', name: 'label' },
        { type: 'double', name: 'score' },
      ]),
      2,
      ['the signature promises output "score", the response has label, proba'],
    ],
    [
      'data does not fill the shape',
      { outputs: [out('output-1', [2], [0])] },
      undefined,
      2,
      ['output output-1 has 1 values for shape [2]'],
    ],
  ])('%s', (...[, body, outputs, rows, problems]) => {
    expect(checkV2Response(body, outputs, rows).problems).toEqual(problems)
  })

  test('a datatype mismatch is only a warning', () => {
    const r = checkV2Response({ outputs: [out('output-1', [1], [1], 'INT32')] }, wine.outputs, 1)
    expect(r).toEqual({ problems: [], warnings: ['output output-1 is INT32, the signature says INT64'] })
  })
})
