"""Tiny MLServer runtimes for the smoke tests: the example add_sub model (as numpy, so the server
needs no ONNX Runtime) and a BYTES model, to exercise input generation from metadata; and OnnxModel,
which serves any ONNX file with ONNX Runtime on the CPU (tests/test_models_perf.py)."""

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


class OnnxModel(MLModel):
    """Serves the ONNX file named by parameters.uri with ONNX Runtime's CPU execution provider."""

    async def load(self) -> bool:
        import onnxruntime as ort  # only this runtime needs it

        self._session = ort.InferenceSession(self.settings.parameters.uri, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        names = [o.name for o in self._session.get_outputs()]
        results = self._session.run(names, feed)
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output(name, value) for name, value in zip(names, results)
        ])
