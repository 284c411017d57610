"""Settings precedence: CLI overrides > SPEECHTOK_* environment > YAML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import Settings, load_settings
from storage.settings import S3Settings

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


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


def test_mlflow_tracking_uri_variable_is_honoured_below_speechtoks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert load_settings().tracking_uri() == "http://mlflow.example:5000"
    monkeypatch.setenv("SPEECHTOK_MLFLOW__TRACKING_URI", "http://speechtok.example:5000")
    assert load_settings().tracking_uri() == "http://speechtok.example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("SPEECHTOK_MLFLOW__TRACKING_URI")
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        load_settings(None, {"storage_root": "s3://lab/speech"}).tracking_uri()


def test_tokenize_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHTOK_TOKENIZE__WORKERS", "3")
    monkeypatch.setenv("SPEECHTOK_TOKENIZE__BATCH_SECONDS", "30")
    monkeypatch.setenv("SPEECHTOK_TOKENIZE__MODEL_URI", "models:/speechtok-codec/7")
    tokenize = load_settings(None, {"tokenize": {"chunks_per_forward": 2}}).tokenize
    assert (tokenize.workers, tokenize.batch_seconds, tokenize.model_uri) == (3, 30.0, "models:/speechtok-codec/7")
    assert tokenize.chunks_per_forward == 2


def test_s3_credentials_are_all_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key from AWS_ACCESS_KEY_ID and a secret from SPEECHTOK_S3__ failed deep inside pyarrow (issue 10)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("SPEECHTOK_S3__SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(ValueError, match="SPEECHTOK_S3__ACCESS_KEY_ID and SPEECHTOK_S3__SECRET_ACCESS_KEY"):
        load_settings()
    monkeypatch.setenv("SPEECHTOK_S3__ACCESS_KEY_ID", "AKIASPEECHTOK")
    options = load_settings().s3.storage_options()
    assert (options["key"], options["secret"]) == ("AKIASPEECHTOK", SECRET)
    # Neither set here: nothing is passed, and botocore's own chain (AWS_* variables, profiles) supplies the pair.
    assert "key" not in S3Settings().storage_options() and "secret" not in S3Settings().storage_options()


def test_credentials_never_serialise(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Prefect stores as flow-run parameters and MLflow as params is the serialised form: no secret in it."""
    monkeypatch.setenv("SPEECHTOK_S3__ACCESS_KEY_ID", "AKIASPEECHTOK")
    monkeypatch.setenv("SPEECHTOK_S3__SECRET_ACCESS_KEY", SECRET)
    settings = load_settings()
    for text in (settings.model_dump_json(), str(settings.model_dump()), repr(settings), str(settings.s3)):
        assert SECRET not in text and "AKIASPEECHTOK" not in text
    assert settings.s3.secret_access_key is not None
    assert settings.s3.secret_access_key.get_secret_value() == SECRET


def test_training_params_hold_no_credentials(tmp_path: Path) -> None:
    from flows.train import build_job
    from training.launch import run_params

    settings = load_settings(
        None,
        {
            "storage_root": str(tmp_path),
            "s3": {"access_key_id": "AKIASPEECHTOK", "secret_access_key": SECRET, "endpoint_url": "http://s3:9000"},
        },
    )
    params = run_params(build_job("encoder", str(tmp_path / "shards"), "tiny", settings))
    assert params["s3.endpoint_url"] == "http://s3:9000"
    assert not any(SECRET in value or "AKIASPEECHTOK" in value for value in params.values())
    assert not any("secret" in key or "access_key" in key for key in params)


def test_prefect_stores_no_secret_among_flow_run_parameters(prefect_api: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flows take `Settings` in-process; the flow sees the secret, the Prefect database never does."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.context import get_run_context

    @flow(name="settings-probe")
    def probe(settings: Settings, s3: S3Settings | None = None) -> tuple[str, str, str]:
        def secret_of(value: S3Settings | None) -> str:
            return value.secret_access_key.get_secret_value() if value and value.secret_access_key else ""

        return str(get_run_context().flow_run.id), secret_of(settings.s3), secret_of(s3)  # type: ignore[union-attr]

    monkeypatch.setenv("SPEECHTOK_S3__ACCESS_KEY_ID", "AKIASPEECHTOK")
    monkeypatch.setenv("SPEECHTOK_S3__SECRET_ACCESS_KEY", SECRET)
    settings = load_settings()
    run_id, seen, seen_s3 = probe(settings, settings.s3)
    assert seen == seen_s3 == SECRET

    import asyncio

    async def stored_parameters() -> str:
        async with get_client() as client:
            return str((await client.read_flow_run(run_id)).parameters)  # type: ignore[arg-type]

    stored = asyncio.run(stored_parameters())
    assert "storage_root" in stored and SECRET not in stored and "AKIASPEECHTOK" not in stored
