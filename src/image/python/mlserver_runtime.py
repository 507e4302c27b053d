"""The MLServer runtime of mlflow-k8s-deploy's mlserver images: mlserver_mlflow's MLflowRuntime
with V2 error answers. Stock MLServer 1.7.1 answers a bad request (unknown column, wrong shape or
datatype) with 500 and a Python traceback, or even 200 (a short column is padded with NaN). Here
requests are checked as server.py checks them first (400 naming the input), MLflow's schema
errors become 400, and a model that raises answers 500 with a one-line {"error": ...}.
"""

from mlflow.exceptions import MlflowException
from mlserver.errors import MLServerError
from mlserver_mlflow import MLflowRuntime

from server import BadRequest, LoadedModel, decode_request, short_mlflow_message


class MLflowRuntimeV2Errors(MLflowRuntime):
    async def load(self):
        loaded = await super().load()
        self._checks = LoadedModel(self._model)
        return loaded

    async def predict(self, payload):
        try:
            decode_request(payload.model_dump(exclude_none=True), self._checks)
        except BadRequest as e:
            raise MLServerError(str(e), status_code=400)
        try:
            return await super().predict(payload)
        except MLServerError:
            raise
        except MlflowException as e:
            if e.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
                raise MLServerError(short_mlflow_message(e.message), status_code=400)
            raise MLServerError(f"the model failed: {e.message}", status_code=500)
        except Exception as e:  # the model's own code
            raise MLServerError(f"the model failed: {type(e).__name__}: {e}", status_code=500)
