"""A real KServe ModelServer (PyPI `kserve`) for tests/test_smoke.py: the example add_sub model over
the KServe v2 protocol. KServe's server implements the v2 core API (health, server and model
metadata, model ready, infer) but not Triton's model repository index (`POST /v2/repository/index`
answers 404), which is what `platformctl smoke` must cope with.

Run with the kserve venv's python: `server.py --http_port N` (kserve's own argument parser reads it).
"""

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

TENSOR = {"datatype": "FP32", "shape": [-1, 4]}


class AddSub(Model):
    def __init__(self):
        super().__init__("add_sub")
        self.ready = True

    def get_input_types(self):
        return [{"name": "INPUT0", **TENSOR}, {"name": "INPUT1", **TENSOR}]

    def get_output_types(self):
        return [{"name": "OUTPUT0", **TENSOR}, {"name": "OUTPUT1", **TENSOR}]

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        a, b = (tensor.as_numpy().astype(np.float32) for tensor in payload.inputs)
        outputs = [InferOutput(name, list(value.shape), "FP32", data=value.flatten().tolist())
                   for name, value in (("OUTPUT0", a + b), ("OUTPUT1", a - b))]
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    ModelServer(enable_grpc=False, workers=1).start([AddSub()])
