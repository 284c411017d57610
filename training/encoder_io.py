"""Save/load a stage-1 encoder as plain weights + config (the MLflow `speechtok-encoder` artifact)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from training.configs import CodecConfig
from training.models.encoder import Encoder

WEIGHTS_FILE = "encoder.pt"
CONFIG_FILE = "config.yaml"
META_FILE = "encoder.json"
FORMAT_NAME = "speechtok-encoder"
FORMAT_VERSION = 1
ARTIFACT_KEY = "encoder"  # the MLflow artifact a registered encoder's saved directory is logged under


def save_encoder(encoder: Encoder, config: CodecConfig, directory: Path, step: int) -> Path:
    """Write the online encoder's weights (the tokenizer path, spec §9), its config and a versioned meta."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, directory / WEIGHTS_FILE)
    config.to_yaml(directory / CONFIG_FILE)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "step": step, "name": config.name}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_encoder(directory: Path) -> tuple[Encoder, CodecConfig]:
    """Rebuild an encoder saved by `save_encoder`, strictly (spec §11.19); refuses unknown versions."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found; is {directory} an encoder saved by speechtok?")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: format {meta.get('format')!r} v{meta.get('format_version')!r} is not "
            f"{FORMAT_NAME!r} v{FORMAT_VERSION}; upgrade speechtok"
        )
    config = CodecConfig.from_yaml(directory / CONFIG_FILE)
    encoder = Encoder(config.encoder)
    encoder.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True), strict=True)
    return encoder, config
