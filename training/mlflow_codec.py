"""MLflow "model from code" for speechtok codecs and stage-1 encoders (no pickled classes: MLflow runs this file at
load time, with speechtok's `training` package on `sys.path` as the model's code path).

`mlflow.pyfunc.load_model("models:/speechtok-codec@production")` gives a pyfunc whose `predict` turns a list of
mono waveforms at the codec's sample rate into uint16 token arrays `[frames, tokens_per_frame]`;
`mlflow.pyfunc.load_model("models:/speechtok-encoder/N")` gives one whose `predict` returns the encoder's latent
frames `[frames, code_dim]` (float32). speechtok itself loads registered models with `training.registry`, which
reads the same weights + config artifacts directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel, PythonModelContext

from training.codec import ARTIFACT_KEY as CODEC_ARTIFACT  # a directory written by `Codec.save`
from training.encoder_io import ARTIFACT_KEY as ENCODER_ARTIFACT  # a directory written by `save_encoder`


class CodecPythonModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        if CODEC_ARTIFACT in context.artifacts:
            from training.codec import Codec

            self.codec: Any = Codec.load(context.artifacts[CODEC_ARTIFACT])
            self.encoder: Any = None
        elif ENCODER_ARTIFACT in context.artifacts:
            from training.encoder_io import load_encoder

            self.codec = None
            self.encoder, _ = load_encoder(Path(context.artifacts[ENCODER_ARTIFACT]))
            self.encoder.eval()
        else:
            raise ValueError(
                f"model artifacts {sorted(context.artifacts)} hold neither '{CODEC_ARTIFACT}' nor "
                f"'{ENCODER_ARTIFACT}'; was it logged by speechtok?"
            )

    def predict(
        self, context: PythonModelContext, model_input: list[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        """Codec: list of [L] float waveforms at `codec.sample_rate` -> list of uint16 [frames, tokens_per_frame].
        Encoder: list of [L] float waveforms at the encoder's rate -> list of float32 [frames, code_dim]."""
        waveforms = [np.asarray(wav, dtype=np.float32) for wav in model_input]
        if self.codec is not None:
            return [self.codec.encode(wav, self.codec.sample_rate).tokens for wav in waveforms]
        import torch

        outputs = []
        with torch.inference_mode():
            for wav in waveforms:
                latent = self.encoder(torch.from_numpy(wav)[None, None, :])  # [1, 1, L] -> [1, D, T]
                outputs.append(latent[0].transpose(0, 1).numpy())  # [T, D]
        return outputs


mlflow.models.set_model(CodecPythonModel())
