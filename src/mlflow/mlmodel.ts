// Reading what MLflow writes next to a model: MLmodel (flavors, signature, input example info),
// the input example in every layout MLflow has used, requirements.txt and python_env.yaml.
// Pure functions over file contents; fetching is someone else's job.
import { isPlainObject, loadYaml } from '../util/yaml.js'
import { MlflowError } from './errors.js'
import type { ColumnSpec, Signature, TensorSpec } from '../contract/signature.js'

export type { ColumnSpec, ParamSpec, Signature, TensorSpec } from '../contract/signature.js'

export interface InputExampleInfo {
  readonly artifactPath: string
  /** dataframe, ndarray, json_object, sparse_matrix_csr, sparse_matrix_csc, ... */
  readonly type?: string
  readonly pandasOrient?: string
  readonly format?: string
  readonly servingInputPath?: string
  readonly hasParams: boolean
}

export interface PyfuncFlavor {
  readonly loaderModule?: string
  readonly pythonVersion?: string
  /** File names of the environment specs (MLflow < 2.0 wrote one conda file name as a string). */
  readonly env: { readonly conda?: string; readonly virtualenv?: string }
  readonly raw: Readonly<Record<string, unknown>>
}

export interface Mlmodel {
  readonly flavors: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  readonly pyfunc?: PyfuncFlavor
  readonly mlflowVersion?: string
  readonly modelId?: string
  readonly runId?: string
  readonly modelUuid?: string
  readonly artifactPath?: string
  readonly signature?: Signature
  readonly inputExample?: InputExampleInfo
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined

export function parseMlmodel(text: string): Mlmodel {
  let doc: unknown
  try {
    doc = loadYaml(text)
  } catch (err) {
    throw new MlflowError(`MLmodel is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!isPlainObject(doc)) throw new MlflowError('MLmodel is not a YAML mapping')
  const flavors = isPlainObject(doc.flavors) ? (doc.flavors as Record<string, Record<string, unknown>>) : {}
  if (Object.keys(flavors).length === 0) throw new MlflowError('MLmodel has no flavors')
  const pf = flavors.python_function
  return {
    flavors,
    pyfunc: isPlainObject(pf) ? parsePyfunc(pf) : undefined,
    mlflowVersion: str(doc.mlflow_version),
    modelId: str(doc.model_id),
    runId: str(doc.run_id),
    modelUuid: str(doc.model_uuid),
    artifactPath: str(doc.artifact_path),
    signature: isPlainObject(doc.signature) ? parseSignature(doc.signature) : undefined,
    inputExample: isPlainObject(doc.saved_input_example_info)
      ? parseExampleInfo(doc.saved_input_example_info)
      : undefined,
  }
}

function parsePyfunc(pf: Record<string, unknown>): PyfuncFlavor {
  const env = pf.env
  return {
    loaderModule: str(pf.loader_module),
    pythonVersion: str(pf.python_version),
    env:
      typeof env === 'string'
        ? { conda: env }
        : isPlainObject(env)
          ? { conda: str(env.conda), virtualenv: str(env.virtualenv) }
          : {},
    raw: pf,
  }
}

/** The signature block: each part a JSON string inside the YAML (or, leniently, YAML itself). */
export function parseSignature(sig: Record<string, unknown>): Signature {
  const part = (key: string): unknown => {
    const v = sig[key]
    if (v === null || v === undefined) return undefined
    if (typeof v !== 'string') return v
    try {
      return JSON.parse(v)
    } catch {
      throw new MlflowError(`MLmodel signature.${key} is not valid JSON`)
    }
  }
  const inputs = part('inputs')
  const outputs = part('outputs')
  const params = part('params')
  return {
    inputs: Array.isArray(inputs) ? inputs.map(parseSpec) : undefined,
    outputs: Array.isArray(outputs) ? outputs.map(parseSpec) : undefined,
    params: Array.isArray(params)
      ? params.map((p: Record<string, unknown>) => ({
          name: String(p.name),
          type: String(p.type),
          default: p.default,
          shape: Array.isArray(p.shape) ? p.shape.map(Number) : null,
        }))
      : undefined,
  }
}

function parseSpec(spec: Record<string, unknown>): ColumnSpec | TensorSpec {
  if (spec.type === 'tensor') {
    const t = isPlainObject(spec['tensor-spec']) ? spec['tensor-spec'] : {}
    return {
      kind: 'tensor',
      name: str(spec.name),
      dtype: String(t.dtype ?? 'object'),
      shape: Array.isArray(t.shape) ? t.shape.map(Number) : [],
    }
  }
  // `required` arrived in MLflow ~2.10; older columns are all required.
  return { kind: 'column', name: str(spec.name), type: String(spec.type), required: spec.required !== false, raw: spec }
}

function parseExampleInfo(info: Record<string, unknown>): InputExampleInfo {
  return {
    artifactPath: str(info.artifact_path) ?? 'input_example.json',
    type: str(info.type),
    pandasOrient: str(info.pandas_orient),
    format: str(info.format),
    servingInputPath: str(info.serving_input_path),
    hasParams: String(info.params) === 'true' || info.params === true,
  }
}

/** Names of the serving payload file across MLflow versions (read `serving_input_path` first). */
export const SERVING_INPUT_FILES = ['serving_input_example.json', 'serving_input_payload.json']

export interface InputExample {
  /** input_example.json as saved (params split off). */
  readonly example: unknown
  readonly params?: Readonly<Record<string, unknown>>
  /** The body MLflow's /invocations takes: the saved serving payload, or one built from the example. */
  readonly servingPayload?: unknown
  readonly info: InputExampleInfo
}

/**
 * The input example from its files. `exampleText` is input_example.json; `servingText` the
 * serving payload file when the model has one.
 */
export function parseInputExample(
  info: InputExampleInfo,
  exampleText: string | undefined,
  servingText?: string,
): InputExample | undefined {
  if (exampleText === undefined && servingText === undefined) return undefined
  const parse = (name: string, text: string): unknown => {
    try {
      return JSON.parse(text)
    } catch {
      throw new MlflowError(`${name} of the model is not valid JSON`)
    }
  }
  let example = exampleText === undefined ? undefined : parse(info.artifactPath, exampleText)
  let params: Record<string, unknown> | undefined
  // With params, input_example.json is {"inputs": <data>, "params": {...}}.
  if (info.hasParams && isPlainObject(example) && 'inputs' in example) {
    params = isPlainObject(example.params) ? example.params : undefined
    example = example.inputs
  }
  const serving = servingText === undefined ? undefined : parse(info.servingInputPath ?? 'serving input', servingText)
  return { example, params, servingPayload: serving ?? buildServingPayload(info, example, params), info }
}

/** What MLflow's serving payload would be, for models saved before the payload file existed. */
export function buildServingPayload(
  info: InputExampleInfo,
  example: unknown,
  params?: Record<string, unknown>,
): unknown {
  if (example === undefined) return undefined
  let payload: Record<string, unknown> | undefined
  if (info.type === 'dataframe') {
    // split keeps columns; values has only data (MLflow drops default integer columns).
    payload = { dataframe_split: example }
  } else if (info.type === 'ndarray') {
    payload = isPlainObject(example) && ('inputs' in example || 'instances' in example) ? example : { inputs: example }
  } else if (info.type === 'json_object') {
    payload = { inputs: example }
  } else {
    return undefined
  }
  return params ? { ...payload, params } : payload
}

/** requirements.txt: one requirement per line, comments and blanks dropped. */
export function parseRequirements(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l.length > 0)
}

export interface PythonEnv {
  readonly python?: string
  readonly buildDependencies: readonly string[]
  readonly dependencies: readonly string[]
}

export function parsePythonEnv(text: string): PythonEnv {
  let doc: unknown
  try {
    doc = loadYaml(text)
  } catch (err) {
    throw new MlflowError(`python_env.yaml is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!isPlainObject(doc)) throw new MlflowError('python_env.yaml is not a YAML mapping')
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : [])
  return {
    python: str(doc.python),
    buildDependencies: list(doc.build_dependencies),
    dependencies: list(doc.dependencies),
  }
}
