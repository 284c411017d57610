"""The one typed configuration of speechtok, merged from (highest first) CLI flags, environment
variables (`SPEECHTOK_...`, nested with `__`, e.g. `SPEECHTOK_SHARD__MAX_SECONDS=12`), a YAML file
(`--settings speechtok.yaml`) and the defaults below.

The standard variables of each external system are honoured too, below speechtok's own: `MLFLOW_TRACKING_URI`
(when `mlflow.tracking_uri` is unset), `AWS_*` and AWS config files for S3 (resolved by botocore in each
process, see `storage.settings`), `RAY_ADDRESS` (read by `ray.init`) and `PREFECT_API_URL` (read by Prefect).
So the same commands run on a laptop or a cluster; only the environment differs (issue 10)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from pipeline.evaluate.config import EvaluateConfig
from pipeline.promote.gate import GateConfig
from pipeline.sharding.config import ShardConfig
from pipeline.tokenize.config import TokenizeConfig
from storage.mlflow_io import default_tracking_uri
from storage.settings import S3Settings
from training.settings import MLflowSettings, TrainSettings

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHTOK_", env_nested_delimiter="__", extra="forbid")

    storage_root: str = Field(
        default="./speechtok-data", description="where outputs go by default: a local path or s3://bucket/prefix"
    )
    s3: S3Settings = Field(default_factory=S3Settings)
    shard: ShardConfig = Field(default_factory=ShardConfig)
    train: TrainSettings = Field(default_factory=TrainSettings)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)

    def tracking_uri(self) -> str:
        """`mlflow.tracking_uri`, else `MLFLOW_TRACKING_URI`, else SQLite under the (local) storage root."""
        configured = self.mlflow.tracking_uri or os.environ.get(TRACKING_URI_VARIABLE)
        if configured:
            return configured
        try:
            return default_tracking_uri(self.storage_root)
        except ValueError as error:
            raise ValueError(f"{error}, or export {TRACKING_URI_VARIABLE}") from error

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build `Settings`; `overrides` (from CLI flags, nested dicts, None values ignored) win over everything."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} not found")

    class _WithFile(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    return _WithFile(**_drop_none(overrides or {}))


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                cleaned[key] = nested
        elif value is not None:
            cleaned[key] = value
    return cleaned
