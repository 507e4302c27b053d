// The V2 (Open Inference Protocol) request a smoke test sends: the user's smoke-test-input, else one
// built from what the model carries, its input example, else its signature (one synthesised row);
// and the check that the answer has the outputs the signature promises. Pure functions over the
// parsed MLmodel. The signature → V2 mapping is MLServer's MLflow runtime's (SeldonIO/MLServer,
// runtimes/mlflow/mlserver_mlflow/metadata.py), which the kserve image's server follows too.
import type { ColumnSpec, Signature, TensorSpec } from '../contract/signature.js'

/** One column or tensor of the model's signature, as src/mlflow/mlmodel.ts parses it. */
export type SignatureEntry = ColumnSpec | TensorSpec

/** input_example.json and how MLflow saved it (`saved_input_example_info`). */
export interface InputExampleLike {
  /** `dataframe`, `ndarray`, `json_object`, `sparse_matrix_csr`… */
  readonly type: string
  /** For dataframes: `split` or `values`. */
  readonly pandasOrient?: string
  /** The parsed content of input_example.json. */
  readonly content: unknown
}

export type V2Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES'

export interface V2Input {
  name: string
  shape: number[]
  datatype: string
  data: unknown[]
  parameters?: Record<string, string>
}

export interface V2Request {
  id?: string
  parameters?: Record<string, string>
  inputs: V2Input[]
}

export interface V2Output {
  name: string
  shape: number[]
  datatype: string
  data: unknown[]
  parameters?: Record<string, unknown>
}

export interface V2Response {
  model_name?: string
  id?: string
  outputs: V2Output[]
}

export type RequestSource = 'smoke-test-input' | 'input example' | 'signature'

export interface BuiltRequest {
  readonly request: V2Request
  readonly source: RequestSource
  /** Rows in the batch, when known: the first dimension every output should have. */
  readonly rows: number | undefined
}

/** Thrown when no request can be built; the message says what to provide. */
export class SmokeRequestError extends Error {
  override readonly name = 'SmokeRequestError'
}

const COLUMN_TYPES: Record<string, { datatype: V2Datatype; contentType?: string }> = {
  boolean: { datatype: 'BOOL' },
  integer: { datatype: 'INT32' },
  long: { datatype: 'INT64' },
  float: { datatype: 'FP32' },
  double: { datatype: 'FP64' },
  string: { datatype: 'BYTES', contentType: 'str' },
  binary: { datatype: 'BYTES', contentType: 'base64' },
  datetime: { datatype: 'BYTES', contentType: 'datetime' },
}
const JSON_COLUMN = { datatype: 'BYTES' as V2Datatype, contentType: 'pd_json' }

const NUMPY_TYPES: Record<string, V2Datatype> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  object: 'BYTES',
  str: 'BYTES',
  bytes: 'BYTES',
}

export function isTensor(e: SignatureEntry): e is TensorSpec {
  return e.kind === 'tensor'
}

/** V2 datatype and MLServer content type of a signature entry. */
export function v2TypeOf(entry: SignatureEntry): { datatype: V2Datatype; contentType?: string } {
  if (isTensor(entry)) {
    // Unknown dtypes (unicode/bytes strings such as <U5) travel as BYTES.
    return { datatype: NUMPY_TYPES[entry.dtype] ?? 'BYTES' }
  }
  return COLUMN_TYPES[entry.type] ?? JSON_COLUMN
}

/** Builds the smoke-test request: smoke-test-input, else the input example, else the signature. */
export function buildV2Request(model: {
  signature?: Signature
  example?: InputExampleLike
  override?: Readonly<Record<string, unknown>>
}): BuiltRequest {
  if (model.override) {
    const request = structuredClone(model.override) as unknown as V2Request
    const first = request.inputs?.[0]?.shape?.[0]
    return { request, source: 'smoke-test-input', rows: typeof first === 'number' ? first : undefined }
  }
  const inputs = model.signature?.inputs
  if (model.example) {
    const built = fromExample(model.example, inputs)
    if (built) return { ...built, source: 'input example' }
  }
  if (inputs && inputs.length > 0) return { ...fromSignature(inputs), source: 'signature' }
  throw new SmokeRequestError(
    model.example
      ? `the model's input example (${model.example.type}) cannot be turned into a V2 request and it has no signature: set smoke-test-input`
      : 'the model has neither an input example nor a signature to build a smoke-test request from: set smoke-test-input',
  )
}

function fromExample(
  example: InputExampleLike,
  signature: readonly SignatureEntry[] | undefined,
): { request: V2Request; rows: number } | undefined {
  let content = example.content
  // With params, input_example.json is {"inputs": <data>, "params": {...}}.
  if (isRecord(content) && 'params' in content && 'inputs' in content && example.type === 'dataframe') {
    content = content['inputs']
  }
  if (example.type === 'dataframe' && isRecord(content) && Array.isArray(content['data'])) {
    const rows = content['data'].filter(Array.isArray) as unknown[][]
    const columns = Array.isArray(content['columns']) ? content['columns'].map(String) : undefined
    return fromTable(rows, columns, signature)
  }
  if (example.type === 'ndarray' && isRecord(content) && 'inputs' in content) {
    return fromTensors(content['inputs'], signature)
  }
  return undefined
}

/** A dataframe: one V2 input per column (MLServer's `pd` codec), datatypes from the signature. */
function fromTable(
  rows: unknown[][],
  columns: string[] | undefined,
  signature: readonly SignatureEntry[] | undefined,
): { request: V2Request; rows: number } {
  const width = columns?.length ?? rows[0]?.length ?? 0
  const columnSig = signature?.every((e) => !isTensor(e)) ? (signature as ColumnSpec[]) : undefined
  const inputs: V2Input[] = []
  for (let j = 0; j < width; j++) {
    const name = columns?.[j] ?? columnSig?.[j]?.name ?? `input-${j}`
    const spec = columnSig?.find((c) => c.name === name) ?? (columns ? undefined : columnSig?.[j])
    const values = rows.map((r) => r[j])
    const type = spec ? v2TypeOf(spec) : guessType(values)
    inputs.push(input(name, [rows.length], type, encode(values, type.contentType)))
  }
  return { request: { parameters: { content_type: 'pd' }, inputs }, rows: rows.length }
}

/** A tf-serving style example: named tensors ({"inputs": {"x": [...]}}) or one unnamed tensor. */
function fromTensors(
  value: unknown,
  signature: readonly SignatureEntry[] | undefined,
): { request: V2Request; rows: number } | undefined {
  const named = isRecord(value) ? Object.entries(value) : [[undefined, value] as const]
  const inputs: V2Input[] = []
  for (const [i, [key, data]] of named.entries()) {
    if (!Array.isArray(data)) return undefined
    const spec = signature?.find((e) => e.name === key) ?? (key === undefined ? signature?.[i] : undefined)
    const shape = shapeOf(data)
    const flat = data.flat(Infinity) as unknown[]
    const type = spec ? v2TypeOf(spec) : guessType(flat)
    inputs.push(input(key ?? spec?.name ?? `input-${i}`, shape, type, flat))
  }
  const request: V2Request = { inputs }
  if (named.length === 1 && named[0]![0] === undefined) request.parameters = { content_type: 'np' }
  return { request, rows: inputs[0]?.shape[0] ?? 1 }
}

/** One synthesised row (0, 0.0, false, "a"…) per the signature. */
function fromSignature(entries: readonly SignatureEntry[]): { request: V2Request; rows: number } {
  if (entries.every(isTensor)) {
    const inputs = entries.map((t, i) => {
      const shape = t.shape.map((d) => (d < 0 ? 1 : d))
      const type = v2TypeOf(t)
      const size = shape.reduce((a, b) => a * b, 1)
      return input(
        t.name ?? `input-${i}`,
        shape,
        type,
        Array.from({ length: size }, () => sample(type.datatype)),
      )
    })
    const request: V2Request = { inputs }
    if (entries.length === 1 && !entries[0]!.name) request.parameters = { content_type: 'np' }
    return { request, rows: inputs[0]?.shape[0] ?? 1 }
  }
  const inputs = (entries as ColumnSpec[]).map((c, j) => {
    const type = v2TypeOf(c)
    const value = COLUMN_TYPES[c.type] ? sampleColumn(c.type) : JSON.stringify(sampleJson(c.raw))
    return input(c.name ?? `input-${j}`, [1], type, [value])
  })
  return { request: { parameters: { content_type: 'pd' }, inputs }, rows: 1 }
}

function input(
  name: string,
  shape: number[],
  type: { datatype: string; contentType?: string },
  data: unknown[],
): V2Input {
  const v: V2Input = { name, shape, datatype: type.datatype, data }
  if (type.contentType) v.parameters = { content_type: type.contentType }
  return v
}

function encode(values: unknown[], contentType: string | undefined): unknown[] {
  if (contentType === 'pd_json') return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)))
  return values
}

function guessType(values: unknown[]): { datatype: V2Datatype; contentType?: string } {
  const present = values.filter((v) => v !== null && v !== undefined)
  if (present.length > 0 && present.every((v) => typeof v === 'boolean')) return { datatype: 'BOOL' }
  if (present.every((v) => typeof v === 'number')) {
    return present.every((v) => Number.isInteger(v)) && present.length > 0
      ? { datatype: 'INT64' }
      : { datatype: 'FP64' }
  }
  if (present.every((v) => typeof v === 'string')) return { datatype: 'BYTES', contentType: 'str' }
  return JSON_COLUMN
}

function sample(datatype: string): unknown {
  if (datatype === 'BOOL') return false
  if (datatype === 'BYTES') return 'a'
  return 0
}

function sampleColumn(type: string): unknown {
  switch (type) {
    case 'boolean':
      return false
    case 'string':
      return 'a'
    case 'binary':
      return 'YQ=='
    case 'datetime':
      return '2024-01-01T00:00:00'
    default:
      return 0
  }
}

function sampleJson(spec: unknown): unknown {
  if (!isRecord(spec)) return null
  switch (spec['type']) {
    case 'array':
      return [sampleJson(spec['items'])]
    case 'object':
      return Object.fromEntries(
        Object.entries(isRecord(spec['properties']) ? spec['properties'] : {}).map(([k, v]) => [k, sampleJson(v)]),
      )
    case 'map':
      return { a: sampleJson(spec['values']) }
    case 'any':
      return 'a'
    default:
      return sampleColumn(String(spec['type']))
  }
}

function shapeOf(data: unknown): number[] {
  const shape: number[] = []
  let level: unknown = data
  while (Array.isArray(level)) {
    shape.push(level.length)
    level = level[0]
  }
  return shape
}

// --- the answer ---------------------------------------------------------------------------------

export interface ResponseCheck {
  /** Problems that fail the smoke test. */
  readonly problems: string[]
  /** Mismatches worth a warning (datatypes MLServer may widen). */
  readonly warnings: string[]
}

/**
 * Checks a V2 response against the signature's outputs: the count, names (when the signature
 * names them), the batch dimension and the fixed dimensions of tensor outputs.
 */
export function checkV2Response(
  body: unknown,
  outputs: readonly SignatureEntry[] | undefined,
  rows: number | undefined,
): ResponseCheck {
  const problems: string[] = []
  const warnings: string[] = []
  if (!isRecord(body) || !Array.isArray(body['outputs']) || body['outputs'].length === 0) {
    return { problems: ['the response has no outputs'], warnings }
  }
  const got = body['outputs'] as Partial<V2Output>[]
  for (const [i, o] of got.entries()) {
    const label = `output ${o.name ?? i}`
    if (typeof o.name !== 'string' || !Array.isArray(o.shape) || !Array.isArray(o.data)) {
      problems.push(`${label} lacks name, shape or data`)
      continue
    }
    const size = o.shape.reduce((a, b) => a * b, 1)
    if (o.data.flat(Infinity).length !== size)
      problems.push(`${label} has ${o.data.flat(Infinity).length} values for shape [${o.shape}]`)
    if (rows !== undefined && o.shape[0] !== rows)
      problems.push(`${label} has shape [${o.shape}], expected ${rows} row(s) first`)
  }
  if (!outputs || outputs.length === 0 || problems.length > 0) return { problems, warnings }

  // A single unnamed output comes back as MLServer's "output-1"; named columns/tensors by name.
  const named = outputs.every((e) => e.name)
  if (got.length !== outputs.length) {
    problems.push(
      `the signature promises ${outputs.length} output(s), the response has ${got.length} (${got.map((o) => o.name).join(', ')})`,
    )
    return { problems, warnings }
  }
  outputs.forEach((spec, i) => {
    const o = (named ? got.find((g) => g.name === spec.name) : got[i]) as V2Output | undefined
    if (!o) {
      problems.push(
        `the signature promises output "${spec.name}", the response has ${got.map((g) => g.name).join(', ')}`,
      )
      return
    }
    const want = v2TypeOf(spec).datatype
    if (o.datatype !== want) warnings.push(`output ${o.name} is ${o.datatype}, the signature says ${want}`)
    if (isTensor(spec)) {
      const dims = spec.shape
      // MLServer may add a trailing 1 to a 1-D result ([N] → [N, 1]).
      const shape = o.shape.length === dims.length + 1 && o.shape.at(-1) === 1 ? o.shape.slice(0, -1) : o.shape
      const fits = shape.length === dims.length && dims.every((d, k) => d < 0 || d === shape[k])
      if (!fits) problems.push(`output ${o.name} has shape [${o.shape}], the signature promises [${dims}]`)
    } else if (o.shape.length > 2 || (o.shape.length === 2 && o.shape[1] !== 1)) {
      problems.push(`output ${o.name} has shape [${o.shape}], the signature promises one column`)
    }
  })
  return { problems, warnings }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
