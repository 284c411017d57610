"""Token rows back to audio through the MLflow registry: each WAV has its row's rate and length, and equals
`Codec.decode` of the same tokens. The table is built without Ray from tokens of the registered codec."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile
from typer.testing import CliRunner

from flows.cli import app
from pipeline.query.detokenize import RegistryCodecs, RowSelection, detokenize, select_rows
from pipeline.query.table import open_token_table
from storage.mlflow_io import use_tracking_uri
from token_tables import Partition, write_token_table
from tokenize_helpers import register_tiny_codec
from training.codec import Codec


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny codec registered as speechtok-codec version 1 (the process's MLflow URI is restored after)."""
    previous = mlflow.get_tracking_uri()
    root = tmp_path_factory.mktemp("detok-mlflow")
    version = register_tiny_codec(root)
    assert version.version == "1"
    yield root
    use_tracking_uri(previous)


@pytest.fixture(scope="module")
def codec(registry: Path) -> Codec:
    return Codec.load(registry / "codec")


@pytest.fixture(scope="module")
def table_dir(codec: Codec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows whose tokens are the codec's own (valid in every FSQ group), at 16 and 24 kHz."""

    def codec_tokens(rng: np.random.Generator, n_frames: int, per_frame: int) -> np.ndarray:
        noise = 0.1 * rng.standard_normal(n_frames * codec.hop).astype(np.float32)
        tokens = codec.encode(noise, codec.sample_rate).tokens
        assert tokens.shape == (n_frames, per_frame)
        return tokens.reshape(-1)

    return write_token_table(
        tmp_path_factory.mktemp("detok-tokens"),
        [Partition(1, "small", 4, shards=1)],
        seed=4,
        tokens=codec_tokens,
        tokens_per_frame=codec.tokens_per_frame,
        seconds=(0.3, 1.2),  # short clips: the tiny HiFi-GAN decodes about 2 audio seconds per CPU second
    )


def first_rows(table_dir: Path, n: int) -> list[dict]:
    rows = pq.read_table(next(table_dir.rglob("*.parquet")))
    return rows.sort_by("utterance_id").slice(0, n).to_pylist()


def assert_clip_is_the_decoded_row(path: Path, row: dict, codec: Codec) -> None:
    audio, rate = soundfile.read(path, dtype="float32")
    assert rate == row["sample_rate"]
    assert audio.shape == (row["num_samples"],)  # the row's duration at its native rate
    assert abs(audio.shape[0] / rate - row["duration_s"]) < 1e-3
    tokens = np.asarray(row["tokens"], dtype=np.uint16).reshape(row["n_frames"], row["tokens_per_frame"])
    expected = codec.decode(tokens, num_samples=row["num_samples"], sample_rate=row["sample_rate"]).numpy()
    np.testing.assert_array_equal(audio, expected)


def test_detokenize_one_utterance_through_the_registry(
    registry: Path, table_dir: Path, codec: Codec, tmp_path: Path
) -> None:
    row = first_rows(table_dir, 1)[0]
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    with open_token_table(str(table_dir)) as table:
        rows = select_rows(table, RowSelection(utterance_id=row["utterance_id"]))
    assert [r.utterance_id for r in rows] == [row["utterance_id"]]
    assert rows[0].tokens.shape == (row["n_frames"], codec.tokens_per_frame)
    written = detokenize(rows, RegistryCodecs(), str(tmp_path / "clip.wav"), single_file=True)
    assert written[0].model_uri == "models:/speechtok-codec/1"
    assert_clip_is_the_decoded_row(tmp_path / "clip.wav", row, codec)


def test_cli_utterance_to_a_wav_file(registry: Path, table_dir: Path, codec: Codec, tmp_path: Path) -> None:
    row = first_rows(table_dir, 1)[0]
    out = tmp_path / "clips" / "clip.wav"
    result = CliRunner().invoke(
        app,
        [
            "detokenize",
            str(table_dir),
            "--utterance",
            row["utterance_id"],
            "-o",
            str(out),
            "--storage-root",
            str(registry),
        ],
    )
    assert result.exit_code == 0, result.output
    assert_clip_is_the_decoded_row(out, row, codec)


def test_cli_sql_writes_one_wav_per_row(registry: Path, table_dir: Path, codec: Codec, tmp_path: Path) -> None:
    rows = first_rows(table_dir, 3)
    sql = "SELECT * FROM tokens ORDER BY utterance_id LIMIT 3"
    result = CliRunner().invoke(
        app, ["detokenize", str(table_dir), "--sql", sql, "-o", str(tmp_path / "wavs"), "--storage-root", str(registry)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == [f"{r['utterance_id']}.wav" for r in rows]
    for row in rows:
        assert_clip_is_the_decoded_row(tmp_path / "wavs" / f"{row['utterance_id']}.wav", row, codec)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--utterance", "no-such-id"], "'no-such-id' is not in"),
        (["--sql", "SELECT utterance_id FROM tokens"], "select whole rows"),
        (["--sql", "SELECT * FROM tokens", "--max-rows", "2"], "more than 2 rows"),
        (["--sql", "SELEC"], "DuckDB rejected"),
        ([], "exactly one of --utterance ID or --sql"),
    ],
)
def test_bad_selections_exit_2_with_the_reason(
    registry: Path, table_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["detokenize", str(table_dir), *args, "-o", str(tmp_path / "x"), "--storage-root", str(registry)]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_several_versions_need_model_version_and_unregistered_versions_are_named(
    registry: Path, table_dir: Path, tmp_path: Path
) -> None:
    # The same rows under model_version=2, a version the registry does not hold.
    copy = tmp_path / "table"
    shutil.copytree(table_dir, copy)
    v2 = copy / "model_version=2" / "split=small"
    v2.mkdir(parents=True)
    for file in (copy / "model_version=1" / "split=small").glob("*.parquet"):
        rows = pq.read_table(file)
        version = pc.add(rows["model_version"], 1).cast(pa.int32())
        rows = rows.set_column(rows.schema.get_field_index("model_version"), "model_version", version)
        pq.write_table(rows, v2 / file.name)
    key = first_rows(table_dir, 1)[0]["utterance_id"]
    base = ["detokenize", str(copy), "--utterance", key, "-o", str(tmp_path / "c.wav"), "--storage-root", str(registry)]

    ambiguous = CliRunner().invoke(app, base)
    assert ambiguous.exit_code == 2 and "model versions [1, 2]" in " ".join(ambiguous.output.split())
    missing = CliRunner().invoke(app, [*base, "--model-version", "2"])
    assert missing.exit_code == 2 and "models:/speechtok-codec/2" in missing.output
    assert CliRunner().invoke(app, [*base, "--model-version", "1"]).exit_code == 0
