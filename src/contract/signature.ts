// A model's signature as MLflow writes it in MLmodel (https://mlflow.org/docs/latest/ml/model/signatures/):
// mlflow/ reads it, inference/ builds and checks the smoke test's request against it.

/** A column of a column-based signature. */
export interface ColumnSpec {
  readonly kind: 'column'
  readonly name?: string
  /** boolean, integer, long, float, double, string, binary, datetime, array, object, map, any */
  readonly type: string
  readonly required: boolean
  /** The raw spec, for complex types (items, properties, values). */
  readonly raw: Readonly<Record<string, unknown>>
}

/** A tensor of a tensor-based signature. */
export interface TensorSpec {
  readonly kind: 'tensor'
  readonly name?: string
  readonly dtype: string
  readonly shape: readonly number[]
}

/** An inference parameter (signature `params`). */
export interface ParamSpec {
  readonly name: string
  readonly type: string
  readonly default: unknown
  readonly shape: readonly number[] | null
}

export interface Signature {
  readonly inputs?: readonly (ColumnSpec | TensorSpec)[]
  readonly outputs?: readonly (ColumnSpec | TensorSpec)[]
  readonly params?: readonly ParamSpec[]
}
