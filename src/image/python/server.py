"""mlflow-k8s-deploy's model server: an MLflow pyfunc model behind KServe's ModelServer (V2 REST).

Generated images run `python /opt/mlflow-k8s-deploy/server.py`. It loads the model with
mlflow.pyfunc.load_model and serves it on the V2 (Open Inference Protocol) paths
/v2/health/live, /v2/health/ready, /v2/models/<name>[/ready|/infer] with <name> from
MLSERVER_MODEL_NAME: the variable the deploy sets for either runtime, so the path users call is
the same whether MLServer or this server answers.

Requests decode the way MLServer's MLflow runtime decodes them, so clients need no change:
request `parameters.content_type` (pd, np, dict, str), else the signature's (columns -> pd, named
tensors -> dict, one unnamed tensor -> np); per input `parameters.content_type` (np, str, base64,
datetime, pd_json), else the signature's. Bad requests answer 400 naming the input; a model that
fails answers 500.
"""

import base64
import json
import logging
import os
import sys
import uuid
import warnings

import numpy as np
import pandas as pd

DATATYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
# MLflow column types -> (V2 datatype, MLServer content type), as mlserver_mlflow maps them.
COLUMN_TYPES = {
    "boolean": ("BOOL", "np"),
    "integer": ("INT32", "np"),
    "long": ("INT64", "np"),
    "float": ("FP32", "np"),
    "double": ("FP64", "np"),
    "string": ("BYTES", "str"),
    "binary": ("BYTES", "base64"),
    "datetime": ("BYTES", "datetime"),
}
REQUEST_CONTENT_TYPES = ("pd", "np", "dict", "str")
INPUT_CONTENT_TYPES = ("np", "str", "base64", "datetime", "pd_json")
# Request parameters that steer decoding; the others go to predict(params=...) as with MLServer.
RESERVED_PARAMETERS = ("content_type", "headers")


class BadRequest(ValueError):
    """A request the model cannot take: answered 400 with this message."""


# --- the signature ------------------------------------------------------------------------------


class Spec:
    """One column or tensor of the signature, reduced to what decoding and metadata need."""

    def __init__(self, name, datatype, shape, content_type, tensor, dtype=None, optional=False):
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.content_type = content_type
        self.tensor = tensor
        self.dtype = dtype
        self.optional = optional


def datatype_of_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "OUSM":
        return "BYTES"
    for name, t in DATATYPES.items():
        if name != "BYTES" and np.dtype(t) == dtype:
            return name
    return "BYTES"


def specs_of(schema, prefix):
    """Signature inputs/outputs as Specs; None for a model without that half of a signature."""
    if schema is None:
        return None
    from mlflow.types.schema import TensorSpec

    specs = []
    for i, entry in enumerate(schema.inputs):
        name = entry.name or f"{prefix}{i}"
        if isinstance(entry, TensorSpec):
            specs.append(Spec(name, datatype_of_dtype(entry.type), list(entry.shape), "np", True, dtype=entry.type))
        else:
            kind = getattr(entry.type, "name", None)
            datatype, content_type = COLUMN_TYPES.get(kind, ("BYTES", "pd_json"))
            specs.append(Spec(name, datatype, [-1], content_type, False, optional=not getattr(entry, "required", True)))
    return specs


def request_content_type_of(schema):
    """The content type a request without one gets (mlserver_mlflow's to_model_content_type)."""
    if schema is None:
        return None
    if schema.is_tensor_spec():
        return "dict" if schema.has_input_names() else "np"
    return "pd"


# --- decoding -----------------------------------------------------------------------------------


def content_type_of(parameters):
    if isinstance(parameters, dict):
        value = parameters.get("content_type")
        return value if isinstance(value, str) and value else None
    return None


def flatten(data):
    """Row-major values of a (possibly nested) data list."""
    if not isinstance(data, (list, tuple)):
        return [data]
    if all(not isinstance(v, (list, tuple)) for v in data):
        return list(data)
    out = []
    for v in data:
        out.extend(flatten(v))
    return out


def as_text(value, name):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"input '{name}': BYTES data is not UTF-8")
    if isinstance(value, str):
        return value
    raise BadRequest(f"input '{name}': BYTES data must be strings, got {type(value).__name__}")


def decode_input(inp, spec):
    """One V2 input -> numpy array of its shape (object arrays for strings, bytes, datetimes, JSON)."""
    name, datatype, shape = inp["name"], str(inp.get("datatype", "")).upper(), inp.get("shape")
    if datatype not in DATATYPES:
        raise BadRequest(f"input '{name}': unknown datatype '{inp.get('datatype')}'; use one of {', '.join(DATATYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"input '{name}': shape must be a list of non-negative integers, got {shape!r}")
    values = flatten(inp.get("data"))
    size = int(np.prod(shape)) if shape else 1
    if len(values) != size:
        raise BadRequest(f"input '{name}': shape {shape} holds {size} value(s), data has {len(values)}")
    if spec is not None and spec.datatype != datatype and not compatible(datatype, spec.datatype):
        raise BadRequest(f"input '{name}': datatype {datatype}, the model's signature says {spec.datatype}")

    content_type = content_type_of(inp.get("parameters")) or (spec.content_type if spec else None)
    if content_type is not None and content_type not in INPUT_CONTENT_TYPES:
        raise BadRequest(f"input '{name}': unknown content_type '{content_type}'; use one of {', '.join(INPUT_CONTENT_TYPES)}")
    if datatype == "BYTES":
        if content_type == "base64":
            try:
                values = [base64.b64decode(as_text(v, name)) for v in values]
            except ValueError:
                raise BadRequest(f"input '{name}': data is not base64")
        elif content_type == "datetime":
            try:
                values = list(pd.to_datetime([as_text(v, name) for v in values]))
            except (ValueError, TypeError) as e:
                raise BadRequest(f"input '{name}': data is not ISO datetimes ({e})")
        elif content_type == "pd_json":
            try:
                values = [json.loads(as_text(v, name)) for v in values]
            except ValueError:
                raise BadRequest(f"input '{name}': data is not JSON text (content_type pd_json)")
        else:
            values = [as_text(v, name) for v in values]
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    if any(isinstance(v, (str, bytes, list, dict)) for v in values):
        raise BadRequest(f"input '{name}': data does not match datatype {datatype}")
    if datatype[0] in "IU" and any(isinstance(v, float) and not v.is_integer() for v in values):
        raise BadRequest(f"input '{name}': data has fractions, datatype {datatype} takes integers")
    try:
        # null stands for NaN in float inputs, as MLServer reads it.
        array = np.array([np.nan if v is None else v for v in values], dtype=DATATYPES[datatype])
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(f"input '{name}': data does not match datatype {datatype}")
    return array.reshape(shape)


def compatible(sent, declared):
    """Datatypes MLflow's schema enforcement widens safely (INT32 data for a long column, ...)."""
    widen = {
        "INT64": ("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
        "INT32": ("INT8", "INT16", "UINT8", "UINT16"),
        "FP64": ("FP16", "FP32", "INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"),
        "FP32": ("FP16", "INT8", "INT16", "UINT8", "UINT16"),
    }
    return sent in widen.get(declared, ())


def column(array, name, rows):
    """A decoded input as one DataFrame column: [N] or [N, 1] -> N values; wider -> N arrays."""
    if array.ndim == 0 or array.shape[0] != rows:
        raise BadRequest(f"input '{name}': {array.shape[0] if array.ndim else 0} row(s), the other inputs have {rows}")
    if array.ndim == 1:
        return array
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    out = np.empty(rows, dtype=object)
    out[:] = list(array)
    return out


def decode_request(body, model):
    """A V2 request body (dict) -> (model input, params)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("the request has no inputs")
    names = [i.get("name") if isinstance(i, dict) else None for i in inputs]
    for n in names:
        if not isinstance(n, str) or not n:
            raise BadRequest("every input needs a name")
    if len(set(names)) != len(names):
        raise BadRequest(f"input '{next(n for n in names if names.count(n) > 1)}' is given twice")
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    content_type = content_type_of(parameters) or model.content_type
    if content_type is not None and content_type not in REQUEST_CONTENT_TYPES:
        raise BadRequest(f"unknown request content_type '{content_type}'; use one of {', '.join(REQUEST_CONTENT_TYPES)}")
    params = {k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS} or None

    specs = {s.name: s for s in model.inputs} if model.inputs else {}
    if model.inputs and content_type in ("pd", "dict"):
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise BadRequest(
                f"input '{unknown[0]}' is not in the model's signature; it takes {', '.join(specs)}"
            )
        missing = [s.name for s in model.inputs if s.name not in names and not s.optional]
        if missing:
            raise BadRequest(f"input '{missing[0]}' is missing; the model's signature requires {', '.join(specs)}")

    if content_type in ("np", "str"):
        if len(inputs) != 1:
            raise BadRequest(f"content_type '{content_type}' takes exactly one input, the request has {len(inputs)}")
        spec = model.inputs[0] if model.inputs and len(model.inputs) == 1 else None
        array = decode_input(inputs[0], spec)
        check_tensor(array, inputs[0]["name"], spec)
        return (list(array.reshape(-1)) if content_type == "str" else array), params

    decoded = {n: decode_input(i, specs.get(n)) for n, i in zip(names, inputs)}
    if content_type == "dict":
        for n, array in decoded.items():
            check_tensor(array, n, specs.get(n))
        return decoded, params
    if content_type is None and len(decoded) == 1:
        # No signature and no content type: a single input is a plain array (MLServer's np).
        return next(iter(decoded.values())), params
    first = next(iter(decoded.values()))
    rows = first.shape[0] if first.ndim else 0
    frame = pd.DataFrame({n: column(a, n, rows) for n, a in decoded.items()})
    return frame, params


def check_tensor(array, name, spec):
    if spec is None or not spec.tensor:
        return
    want = spec.shape
    if len(want) != array.ndim or any(w != -1 and w != g for w, g in zip(want, array.shape)):
        raise BadRequest(f"input '{name}': shape {list(array.shape)}, the model's signature says {want}")
    if array.dtype != np.dtype(spec.dtype) and array.dtype != object:
        # Tensors are not cast by MLflow: give the model the dtype it declared, when it is safe.
        if np.can_cast(array.dtype, spec.dtype, casting="safe"):
            return
        raise BadRequest(f"input '{name}': datatype {datatype_of_dtype(array.dtype)}, the model's signature says {spec.datatype}")


def cast_tensors(data, model):
    """Tensors safely widened to the signature's dtype (INT32 sent for an int64 tensor, ...)."""
    specs = {s.name: s for s in model.inputs or [] if s.tensor}
    if isinstance(data, np.ndarray) and len(specs) == 1:
        spec = next(iter(specs.values()))
        return data.astype(spec.dtype) if data.dtype != object else data
    if isinstance(data, dict):
        return {k: (v.astype(specs[k].dtype) if k in specs and v.dtype != object else v) for k, v in data.items()}
    return data


# --- encoding -----------------------------------------------------------------------------------


def encode_array(name, array):
    """A numpy array -> one V2 output (strings as BYTES, other objects as JSON text)."""
    array = np.asarray(array)
    shape = list(array.shape) if array.ndim else [1]
    flat = array.reshape(-1)
    if array.dtype.kind in "biuf":
        datatype = datatype_of_dtype(array.dtype)
        if array.dtype.kind == "f":
            data = [None if np.isnan(v) else v for v in flat.tolist()]
        else:
            data = flat.tolist()
        return {"name": name, "shape": shape, "datatype": datatype, "data": data, "parameters": {"content_type": "np"}}
    if array.dtype.kind == "M":
        data = [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in flat]
        return {"name": name, "shape": shape, "datatype": "BYTES", "data": data, "parameters": {"content_type": "datetime"}}
    values = flat.tolist()
    if all(isinstance(v, str) for v in values):
        return {"name": name, "shape": shape, "datatype": "BYTES", "data": values, "parameters": {"content_type": "str"}}
    if all(isinstance(v, bytes) for v in values):
        data = [base64.b64encode(v).decode("ascii") for v in values]
        return {"name": name, "shape": shape, "datatype": "BYTES", "data": data, "parameters": {"content_type": "base64"}}
    data = [json.dumps(to_jsonable(v)) for v in values]
    return {"name": name, "shape": shape, "datatype": "BYTES", "data": data, "parameters": {"content_type": "pd_json"}}


def to_jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def encode_series(name, series):
    if series.dtype.kind == "M":
        return encode_array(name, series.to_numpy())
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return encode_array(name, series.astype(object).to_numpy())
    # Nullable extension dtypes (Int64, boolean) -> numpy, NaN where missing.
    return encode_array(name, series.to_numpy(dtype=float if series.hasnans else None))


def single_output_name(model):
    outputs = model.outputs or []
    if len(outputs) == 1 and outputs[0].name and not outputs[0].name.startswith("output-"):
        return outputs[0].name
    return "output-1"


def encode_prediction(prediction, model):
    """A pyfunc prediction -> (outputs, response content type)."""
    if isinstance(prediction, pd.DataFrame):
        return [encode_series(str(c), prediction[c]) for c in prediction.columns], "pd"
    if isinstance(prediction, pd.Series):
        name = prediction.name if isinstance(prediction.name, str) else single_output_name(model)
        return [encode_series(name, prediction)], "np"
    if isinstance(prediction, dict):
        outputs = []
        for k, v in prediction.items():
            if isinstance(v, pd.Series):
                outputs.append(encode_series(str(k), v))
            elif isinstance(v, pd.DataFrame):
                outputs.append(encode_array(str(k), v.to_numpy()))
            else:
                outputs.append(encode_array(str(k), v))
        return outputs, "dict"
    if isinstance(prediction, (list, tuple)) and prediction and all(
        isinstance(p, (np.ndarray, pd.Series, pd.DataFrame)) for p in prediction
    ):
        outputs = []
        for i, p in enumerate(prediction, 1):
            if isinstance(p, pd.DataFrame):
                outputs.append(encode_array(f"output-{i}", p.to_numpy()))
            elif isinstance(p, pd.Series):
                outputs.append(encode_series(f"output-{i}", p))
            else:
                outputs.append(encode_array(f"output-{i}", p))
        return outputs, None
    if isinstance(prediction, (list, tuple)):
        array = np.empty(len(prediction), dtype=object)
        array[:] = list(prediction)
        try:
            # Homogeneous numbers/strings become a typed array; ragged or mixed stay objects.
            typed = np.array(prediction)
            if typed.dtype != object:
                array = typed
        except ValueError:
            pass
        if array.dtype.kind == "U":
            array = array.astype(object)
        return [encode_array(single_output_name(model), array)], "np"
    array = np.asarray(prediction)
    if array.dtype.kind == "U":
        array = array.astype(object)
    return [encode_array(single_output_name(model), array)], "np"


# --- the model ----------------------------------------------------------------------------------


class LoadedModel:
    """The pyfunc model with what decoding needs from its signature."""

    def __init__(self, pyfunc):
        self.pyfunc = pyfunc
        signature = pyfunc.metadata.signature
        self.inputs = specs_of(signature.inputs if signature else None, "input-")
        self.outputs = specs_of(signature.outputs if signature else None, "output-")
        self.content_type = request_content_type_of(signature.inputs if signature else None)

    def metadata_tensors(self, specs):
        return [{"name": s.name, "datatype": s.datatype, "shape": s.shape if s.tensor else [-1, 1]} for s in specs or []]

    def infer(self, body, model_name):
        """A V2 request body -> a V2 response body. Raises BadRequest or ModelFailure."""
        from mlflow.exceptions import MlflowException

        data, params = decode_request(body, self)
        data = cast_tensors(data, self)
        try:
            prediction = self.pyfunc.predict(data, params=params) if params else self.pyfunc.predict(data)
        except MlflowException as e:
            if e.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
                raise BadRequest(short_mlflow_message(e.message))
            raise ModelFailure(f"the model failed: {e.message}")
        except Exception as e:  # the model's own code: its failure, not the caller's
            raise ModelFailure(f"the model failed: {type(e).__name__}: {e}")
        try:
            outputs, content_type = encode_prediction(prediction, self)
        except Exception as e:
            raise ModelFailure(f"the model's prediction ({type(prediction).__name__}) cannot be encoded: {e}")
        response = {
            "model_name": model_name,
            "id": str(body.get("id") or uuid.uuid4()),
            "outputs": outputs,
        }
        if content_type:
            response["parameters"] = {"content_type": content_type}
        return response


class ModelFailure(RuntimeError):
    """The model raised: answered 500."""


def short_mlflow_message(message):
    """MLflow's schema errors quote the whole input first; keep the part that says what is wrong."""
    marker = "Error: "
    return message[message.rindex(marker) + len(marker) :] if marker in message else message


# --- serving ------------------------------------------------------------------------------------


def serve():
    import kserve
    import mlflow.pyfunc
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import errors as kserve_errors
    from kserve.model_server import app

    name = os.environ.get("MLSERVER_MODEL_NAME") or "mlflow-model"
    model_dir = os.environ.get("MLFLOW_MODEL_DIR") or "/opt/mlflow-model"
    port = int(os.environ.get("HTTP_PORT") or os.environ.get("PORT") or "8080")

    class PyfuncModel(kserve.Model):
        def __init__(self):
            super().__init__(name)
            self.model = None

        def load(self):
            self.model = LoadedModel(mlflow.pyfunc.load_model(model_dir))
            self.ready = True
            return self.ready

        def get_input_types(self):
            return self.model.metadata_tensors(self.model.inputs)

        def get_output_types(self):
            return self.model.metadata_tensors(self.model.outputs)

        async def preprocess(self, payload, headers=None):
            return payload

        def predict(self, payload, headers=None):
            body = request_body(payload)
            try:
                return self.model.infer(body, self.name)
            except BadRequest as e:
                raise kserve_errors.InvalidInput(str(e))
            except ModelFailure as e:
                raise kserve_errors.InferenceError(str(e))

    async def validation_error(_, exc):
        # FastAPI answers schema errors with 422; the V2 protocol calls them bad requests.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
        return JSONResponse(status_code=400, content={"error": f"invalid request at {where}: {first.get('msg', exc)}"})

    app.add_exception_handler(RequestValidationError, validation_error)
    model = PyfuncModel()
    model.load()
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])


def request_body(payload):
    """kserve's InferRequest -> the plain V2 body the decoder reads."""
    if isinstance(payload, dict):
        return payload
    return {
        "id": payload.id,
        "parameters": dict(payload.parameters or {}),
        "inputs": [
            {
                "name": i.name,
                "shape": list(i.shape),
                "datatype": i.datatype,
                "parameters": dict(i.parameters or {}),
                "data": i.data.tolist() if isinstance(i.data, np.ndarray) else i.data,
            }
            for i in payload.inputs
        ],
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # Three log lines per request are two too many: keep uvicorn's access log, drop kserve's
    # per-request timing trace, and FastAPI's note about kserve's own response class.
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    serve()
