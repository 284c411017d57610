"""The one way speechtok loads a registered model (codec or stage-1 encoder) from the MLflow registry.

An alias (`models:/speechtok-codec@production`) is resolved once, on the driver, to a version
(`models:/speechtok-codec/N`); everything after that names the version, so a job never switches models half-way.

Workers never receive a path that exists only on the driver (issue 10): `fetch_model_files` reads a version's
saved files into memory as `ModelFiles`, which travel to Ray actors through the object store; each actor writes
them into its own scratch folder and loads from there (`ModelFiles.load_codec`). In one process (evaluate,
detokenize) `load_codec` does the same without the round trip.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from storage.fs import local_scratch
from storage.mlflow_io import RegisteredVersion, download_model_artifact, resolve_version
from training.codec import ARTIFACT_KEY as CODEC_ARTIFACT
from training.codec import META_FILE, Codec
from training.encoder_io import ARTIFACT_KEY as ENCODER_ARTIFACT
from training.encoder_io import load_encoder


def pin_version(model_uri: str) -> RegisteredVersion:
    """`models:/name@alias` (or `/N`) -> the registered version it names now (LookupError naming the URI)."""
    return resolve_version(model_uri)


@dataclass(frozen=True)
class ModelFiles:
    """A registered version's saved files (`Codec.save` / `save_encoder` output), in memory and picklable."""

    version: RegisteredVersion
    artifact: str  # "codec" or "encoder"
    files: dict[str, bytes]  # path relative to the saved directory -> content

    @classmethod
    def from_directory(cls, directory: Path, version: RegisteredVersion, artifact: str = CODEC_ARTIFACT) -> ModelFiles:
        """The files of a saved model directory (`Codec.save` output) as `ModelFiles`."""
        paths = sorted(p for p in directory.rglob("*") if p.is_file())
        return cls(version, artifact, {p.relative_to(directory).as_posix(): p.read_bytes() for p in paths})

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data in self.files.values())

    def meta(self) -> dict[str, Any]:
        """The codec's `codec.json`: the token contract as saved with the weights (STYLE rule 6)."""
        if META_FILE not in self.files:
            raise ValueError(f"{self.version.model_uri} holds no {META_FILE}; is it a speechtok codec?")
        return dict(json.loads(self.files[META_FILE]))

    @contextmanager
    def materialised(self) -> Iterator[Path]:
        """The files written into a scratch folder of this process, removed afterwards."""
        directory = Path(tempfile.mkdtemp(prefix=f"speechtok-{self.artifact}-"))
        try:
            for name, data in self.files.items():
                target = directory / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def load_codec(self, map_location: str | torch.device = "cpu") -> Codec:
        with self.materialised() as directory:
            return Codec.load(directory, map_location=map_location)

    def load_encoder(self) -> torch.nn.Module:
        with self.materialised() as directory:
            encoder, _ = load_encoder(directory)
            return encoder


def fetch_model_files(model_uri: str, artifact: str = CODEC_ARTIFACT) -> ModelFiles:
    """Resolve `model_uri` once and read the version's `artifact` files into memory."""
    version = pin_version(model_uri)
    with local_scratch("speechtok-model-") as scratch:
        directory = download_model_artifact(version.model_uri, artifact, scratch)
        return ModelFiles.from_directory(directory, version, artifact)


def fetch_codec(model_uri: str) -> ModelFiles:
    return fetch_model_files(model_uri, CODEC_ARTIFACT)


def fetch_encoder(model_uri: str) -> ModelFiles:
    return fetch_model_files(model_uri, ENCODER_ARTIFACT)


@dataclass(frozen=True)
class LoadedCodec:
    version: RegisteredVersion
    codec: Codec


def load_codec(model_uri: str, map_location: str | torch.device = "cpu") -> LoadedCodec:
    """A registered codec, loaded in this process (tokenize's actors use `fetch_codec` + `ModelFiles` instead)."""
    version = pin_version(model_uri)
    with local_scratch("speechtok-codec-") as scratch:
        directory = download_model_artifact(version.model_uri, CODEC_ARTIFACT, scratch)
        return LoadedCodec(version, Codec.load(directory, map_location=map_location))
