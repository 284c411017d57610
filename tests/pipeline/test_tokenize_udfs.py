"""Tokenization UDFs and driver-side pieces called directly on batches (no Ray, no MLflow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile
import torch
import webdataset

from pipeline.tokenize import decode as decode_module
from pipeline.tokenize.collect import ShardCollector
from pipeline.tokenize.config import TokenizeConfig
from pipeline.tokenize.decode import decode_sample, read_shard
from pipeline.tokenize.encode import CodecEncoder
from pipeline.tokenize.table import TOKENS_SCHEMA, EncodedRows, ModelInfo, build_table
from storage.mlflow_io import RegisteredVersion
from training.codec import Codec
from training.configs import tiny
from training.registry import ModelFiles

RATE = 16_000


def flac(seconds: float, seed: int) -> bytes:
    audio = np.random.default_rng(seed).normal(0, 0.1, int(seconds * RATE)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, RATE, format="FLAC")
    return buffer.getvalue()


def write_tar(path: Path, samples: dict[str, float]) -> None:
    with path.open("wb") as handle, webdataset.TarWriter(handle, encoder=False) as tar:
        for i, (key, seconds) in enumerate(samples.items()):
            tar.write({"__key__": key, "flac": flac(seconds, i), "json": json.dumps({"key": key}).encode()})


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return Codec.from_config(tiny()).save(tmp_path_factory.mktemp("codec") / "codec")


def test_decode_sample_resamples_to_the_model_rate() -> None:
    audio = decode_sample({"__key__": "a", "flac": flac(1.0, 0)}, 24_000)
    assert audio.dtype == np.float32 and audio.shape == (24_000,)
    with pytest.raises(ValueError, match=r"a\.flac cannot be decoded"):
        decode_sample({"__key__": "a", "flac": b"garbage"}, 24_000)


def test_read_shard_yields_rows_or_an_error_row(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    write_tar(tmp_path / "shards" / "s-0.tar", {"k1": 0.5, "k2": 1.0})
    task = {"shard": "s-0", "path": "shards/s-0.tar", "expected": 2}
    rows = list(read_shard(task, shards_url=str(tmp_path), s3=None, target_rate=RATE))
    assert [r["key"] for r in rows] == ["k1", "k2"] and all(r["error"] == "" for r in rows)
    assert len(np.frombuffer(rows[1]["audio"], dtype=np.float32)) == RATE

    short = list(read_shard({**task, "expected": 3}, shards_url=str(tmp_path), s3=None, target_rate=RATE))
    assert "holds 2 samples but manifest/segments.parquet lists 3" in short[-1]["error"]

    (tmp_path / "shards" / "s-0.tar").write_bytes(b"not a tar" * 200)
    broken = list(read_shard(task, shards_url=str(tmp_path), s3=None, target_rate=RATE))
    assert len(broken) == 1 and broken[0]["key"] == "" and "unreadable shard" in broken[0]["error"]


def test_read_shard_retries_transient_errors_without_duplicating_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection reset half-way is retried from the sample reached; only damage makes an error row (issue 10)."""
    (tmp_path / "shards").mkdir()
    write_tar(tmp_path / "shards" / "s-0.tar", {"k1": 0.5, "k2": 0.5, "k3": 0.5})
    task = {"shard": "s-0", "path": "shards/s-0.tar", "expected": 3}
    real_iter_samples = decode_module.iter_samples
    failures = {"left": 2}

    def flaky(location, paths):  # type: ignore[no-untyped-def]
        for index, sample in enumerate(real_iter_samples(location, paths)):
            if index == 1 and failures["left"]:
                failures["left"] -= 1
                raise ConnectionResetError(104, "Connection reset by peer")
            yield sample

    monkeypatch.setattr(decode_module, "iter_samples", flaky)
    monkeypatch.setattr(decode_module, "_RETRY_WAIT_S", 0.0)
    rows = list(read_shard(task, shards_url=str(tmp_path), s3=None, target_rate=RATE))
    assert [r["key"] for r in rows] == ["k1", "k2", "k3"] and all(r["error"] == "" for r in rows)

    failures["left"] = decode_module.READ_ATTEMPTS  # an outage that outlasts the retries fails the task
    with pytest.raises(ConnectionResetError):
        list(read_shard(task, shards_url=str(tmp_path), s3=None, target_rate=RATE))

    missing = {**task, "path": "shards/gone.tar"}  # a missing shard is not transient: rejected at once
    rows = list(read_shard(missing, shards_url=str(tmp_path), s3=None, target_rate=RATE))
    assert len(rows) == 1 and "unreadable shard" in rows[0]["error"]


def test_codec_encoder_equals_encoding_one_by_one_and_passes_errors(codec_dir: Path) -> None:
    codec = Codec.load(codec_dir)
    rng = np.random.default_rng(1)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (24_000, 60_000, 24_000)]
    batch = {
        "key": np.array(["a", "b", "", "c"], dtype=object),
        "shard": np.array(["s", "s", "t", "s"], dtype=object),
        "audio": np.array([clips[0].tobytes(), clips[1].tobytes(), b"", clips[2].tobytes()], dtype=object),
        "error": np.array(["", "", "broken", ""], dtype=object),
    }
    # A budget of 2.6 s of padded audio splits the batch into two encode calls.
    files = ModelFiles.from_directory(codec_dir, RegisteredVersion("m", "1", "models:/m/1"))
    out = CodecEncoder(files, batch_seconds=2.6)(batch)
    assert list(out["key"]) == ["a", "b", "", "c"] and list(out["error"]) == ["", "", "broken", ""]
    assert out["tokens"][2] == b"" and out["n_frames"][2] == 0
    for position, clip in zip((0, 1, 3), clips, strict=True):
        expected = codec.encode(clip, codec.sample_rate).tokens
        tokens = np.frombuffer(out["tokens"][position], dtype=np.uint16).reshape(-1, codec.tokens_per_frame)
        assert out["n_frames"][position] == expected.shape[0]
        assert np.array_equal(tokens, expected)


def batch_of(rows: list[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    """(key, shard, error) rows -> an encoder output batch with one-frame tokens."""
    return {
        "key": np.array([r[0] for r in rows], dtype=object),
        "shard": np.array([r[1] for r in rows], dtype=object),
        "tokens": np.array([b"" if r[2] else np.arange(19, dtype=np.uint16).tobytes() for r in rows], dtype=object),
        "n_frames": np.array([0 if r[2] else 1 for r in rows], dtype=np.int32),
        "error": np.array([r[2] for r in rows], dtype=object),
    }


def test_collector_completes_shards_as_their_rows_arrive() -> None:
    collector = ShardCollector({"a": 2, "b": 2, "c": 2, "d": 1})
    first = collector.add_batch(batch_of([("a2", "a", ""), ("b1", "b", ""), ("c1", "c", "")]))
    assert first == [] and set(collector.buffers) == {"a", "b", "c"}
    done = collector.add_batch(batch_of([("a1", "a", ""), ("", "b", "tar broken"), ("b2", "b", "")]))
    assert [(o.shard, o.reason) for o in done] == [("a", ""), ("b", "tar broken")]
    assert done[0].rows is not None and done[0].rows.keys == ["a2", "a1"]
    assert collector.late_rows == 1 and set(collector.buffers) == {"c"}
    assert [(o.shard, o.reason) for o in collector.finish()] == [
        ("c", "stream ended after 1 of 2 segments"),
        ("d", "stream ended after 0 of 1 segments"),
    ]


MODEL = ModelInfo("models:/m@production", "m", "3", 19, 2.5, 24_000, 16_384)


def segments(keys: list[str]) -> pa.Table:
    n = len(keys)
    return pa.table(
        {
            "key": keys,
            "shard": ["s"] * n,
            "split": ["small"] * n,
            "holdout": [False] * n,
            "speaker": ["1"] * n,
            "book": ["2"] * n,
            "source": ["small/1/2/x.flac"] * n,
            "segment_index": pa.array(range(n), pa.int32()),
            "start_s": [0.0] * n,
            "end_s": [0.4] * n,
            "duration_s": [0.4] * n,
            "num_samples": [6400] * n,
            "sample_rate": pa.array([RATE] * n, pa.int32()),
        }
    )


def test_build_table_sorts_rows_and_checks_keys() -> None:
    one, two = np.full(19, 1, np.uint16), np.full(38, 2, np.uint16)
    encoded = EncodedRows(["k2", "k1"], [two.tobytes(), one.tobytes()], [2, 1])
    table = build_table(segments(["k1", "k2"]), encoded, MODEL)
    assert table.schema == TOKENS_SCHEMA
    assert table.column("utterance_id").to_pylist() == ["k1", "k2"]
    assert table.column("tokens").to_pylist() == [one.tolist(), two.tolist()]
    assert table.column("n_frames").to_pylist() == [1, 2] and table.column("model_version").to_pylist() == [3, 3]
    with pytest.raises(ValueError, match="differ from manifest"):
        build_table(segments(["k1", "k3"]), encoded, MODEL)


def test_rows_per_batch_covers_about_batch_seconds() -> None:
    assert TokenizeConfig(batch_seconds=120).rows_per_batch(12.0) == 10
    assert TokenizeConfig(batch_seconds=1).rows_per_batch(12.0) == 1


def test_cpu_reservations_are_fitted_so_decoding_can_run() -> None:
    config = TokenizeConfig(workers=2)
    fitted = config.fit_to_cluster(2.0)
    assert fitted.workers * fitted.cpus_per_worker + fitted.decode_cpus <= 2.0
    assert TokenizeConfig(workers=1).fit_to_cluster(2.0) == TokenizeConfig(workers=1)


def test_model_files_load_anywhere_from_memory(codec_dir: Path) -> None:
    """What reaches a Ray actor is the codec's bytes (pickled through the object store), never a driver path."""
    import pickle

    files = ModelFiles.from_directory(codec_dir, RegisteredVersion("m", "1", "models:/m/1"))
    shipped = pickle.loads(pickle.dumps(files))
    assert str(codec_dir) not in pickle.dumps(files).decode("latin-1")
    assert shipped.meta()["tokens_per_frame"] == 19
    clip = np.random.default_rng(2).normal(0, 0.1, 24_000).astype(np.float32)
    expected = Codec.load(codec_dir).encode(clip, 24_000).tokens
    assert np.array_equal(shipped.load_codec().encode(clip, 24_000).tokens, expected)
