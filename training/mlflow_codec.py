"""MLflow "model from code" for a speechtok codec (no pickled classes: MLflow runs this file at load time).

`mlflow.pyfunc.load_model("models:/speechtok-codec@production")` gives a pyfunc whose `predict` turns a list
of mono waveforms at the codec's sample rate into uint16 token arrays `[frames, 19]`. speechtok itself loads
codecs with `storage.mlflow_io.load_codec`, which reads the same weights + config artifacts directly.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel, PythonModelContext

CODEC_ARTIFACT = "codec"  # key of the artifacts dict: a directory written by `Codec.save`
ENCODER_ARTIFACT = "encoder"  # key for stage-1 encoders: a directory written by `save_encoder`


class CodecPythonModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from training.codec import Codec

        self.codec = Codec.load(context.artifacts[CODEC_ARTIFACT])

    def predict(
        self, context: PythonModelContext, model_input: list[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        """list of [L] float waveforms at `codec.sample_rate` -> list of uint16 [frames, 19] arrays."""
        waveforms = list(model_input)
        return [
            self.codec.encode(np.asarray(wav, dtype=np.float32), self.codec.sample_rate).tokens for wav in waveforms
        ]


mlflow.models.set_model(CodecPythonModel())
