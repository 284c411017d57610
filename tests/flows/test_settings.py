"""Settings precedence: CLI overrides > SPEECHTOK_* environment > YAML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import load_settings


def test_yaml_env_and_flags_merge_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "speechtok.yaml"
    config.write_text(
        "storage_root: s3://lab/speech\n"
        "s3:\n  endpoint_url: http://yaml:9000\n"
        "shard:\n  max_seconds: 12\n  concurrency: 3\n  holdout_fraction: 0.1\n"
    )
    monkeypatch.setenv("SPEECHTOK_SHARD__CONCURRENCY", "5")
    monkeypatch.setenv("SPEECHTOK_S3__ENDPOINT_URL", "http://env:9000")

    settings = load_settings(config, {"shard": {"holdout_fraction": 0.05, "max_seconds": None}})

    assert settings.storage_root == "s3://lab/speech"  # YAML over default
    assert settings.s3.endpoint_url == "http://env:9000"  # env over YAML
    assert settings.shard.concurrency == 5  # env over YAML
    assert settings.shard.holdout_fraction == 0.05  # flag over YAML
    assert settings.shard.max_seconds == 12  # a flag left unset does not hide YAML
    assert settings.shard.target_shard_bytes == 1024**3  # default


def test_bad_values_are_refused_with_the_field_name(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("shard:\n  max_seconds: -3\n")
    with pytest.raises(ValueError, match="max_seconds"):
        load_settings(config)
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_settings(tmp_path / "missing.yaml")


def test_s3_settings_become_s3fs_options() -> None:
    settings = load_settings(None, {"s3": {"endpoint_url": "http://127.0.0.1:9000", "region": "eu-west-1"}})
    options = settings.s3.storage_options()
    assert options["client_kwargs"] == {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}
