"""Tiny MLServer runtimes for the smoke tests: the example add_sub model (as numpy, so the server
needs no ONNX Runtime) and a BYTES model, to exercise input generation from metadata."""

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse


class AddSub(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        a, b = (NumpyCodec.decode_input(i).astype(np.float32) for i in payload.inputs)
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output("OUTPUT0", a + b),
            NumpyCodec.encode_output("OUTPUT1", a - b),
        ])


class Greeter(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        names = StringCodec.decode_input(payload.inputs[0])
        return InferenceResponse(model_name=self.name, outputs=[
            StringCodec.encode_output("GREETING", [f"hello {n}" for n in names]),
        ])
