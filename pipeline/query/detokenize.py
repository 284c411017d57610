"""Token rows back to audio: each row is decoded by the codec version recorded in it (`model_name`,
`model_version`), fetched once from the MLflow registry, at the row's native `sample_rate` and exactly
`num_samples` long (the segment's duration)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.query.table import TokenTable, run_query
from storage.outputs import FileTarget, open_file_target, write_wav
from storage.settings import S3Settings
from training.codec import Codec
from training.registry import load_codec

# What a selected row must carry to be decoded (`SELECT * FROM tokens ...` has them all).
REQUIRED_COLUMNS = (
    "utterance_id",
    "tokens",
    "n_frames",
    "tokens_per_frame",
    "sample_rate",
    "num_samples",
    "model_name",
    "model_version",
)
DEFAULT_MAX_ROWS = 1000


@dataclass(frozen=True)
class TokenRow:
    """One row to decode: `tokens` [n_frames, tokens_per_frame] uint16."""

    utterance_id: str
    tokens: np.ndarray
    sample_rate: int
    num_samples: int
    model_name: str
    model_version: int

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"


@dataclass(frozen=True)
class RowSelection:
    """Which rows to decode: one utterance, or the rows a SQL query over the views selects.

    `model_version` restricts either to one table version (needed when an utterance is in several).
    """

    utterance_id: str | None = None
    sql: str | None = None
    model_version: int | None = None
    max_rows: int = DEFAULT_MAX_ROWS

    def __post_init__(self) -> None:
        if (self.utterance_id is None) == (self.sql is None):
            raise ValueError("select rows with exactly one of --utterance ID or --sql QUERY")
        if self.max_rows < 1:
            raise ValueError(f"max_rows={self.max_rows}; pass a positive row limit")


@dataclass(frozen=True)
class WrittenClip:
    utterance_id: str
    url: str
    model_uri: str
    sample_rate: int
    num_samples: int


def select_rows(table: TokenTable, selection: RowSelection) -> list[TokenRow]:
    """The rows `selection` names, checked: they exist, carry `REQUIRED_COLUMNS` and are at most `max_rows`."""
    if selection.utterance_id is not None:
        quoted = selection.utterance_id.replace("'", "''")
        sql = f"SELECT * FROM tokens WHERE utterance_id = '{quoted}'"
    else:
        sql = str(selection.sql).strip().rstrip(";")  # it becomes a subquery below
    if selection.model_version is not None:
        sql = f"SELECT * FROM ({sql}) WHERE model_version = {int(selection.model_version)}"
    result = run_query(table, f"SELECT * FROM ({sql}) LIMIT {selection.max_rows + 1}")
    missing = [name for name in REQUIRED_COLUMNS if name not in result.column_names]
    if missing:
        raise ValueError(
            f"the query selects no {missing} column(s); select whole rows, e.g. SELECT * FROM tokens WHERE ..."
        )
    if result.num_rows > selection.max_rows:
        raise ValueError(
            f"the query selects more than {selection.max_rows} rows; add a WHERE/LIMIT or raise --max-rows"
        )
    rows = rows_from_arrow(result)
    if selection.utterance_id is not None:
        if not rows:
            version = "" if selection.model_version is None else f" with model_version={selection.model_version}"
            raise LookupError(f"utterance {selection.utterance_id!r}{version} is not in {table.url}; check the id")
        if len(rows) > 1:
            versions = sorted(r.model_version for r in rows)
            raise ValueError(
                f"utterance {selection.utterance_id!r} is in model versions {versions} of {table.url}; "
                "pass --model-version to pick one"
            )
    return rows


def rows_from_arrow(result: pa.Table) -> list[TokenRow]:
    """Arrow rows with `REQUIRED_COLUMNS` -> `TokenRow`s, with the token list reshaped to frames."""
    rows: list[TokenRow] = []
    for record in result.select(list(REQUIRED_COLUMNS)).to_pylist():
        n_frames, per_frame = int(record["n_frames"]), int(record["tokens_per_frame"])
        flat = np.asarray(record["tokens"], dtype=np.uint16)
        if flat.shape[0] != n_frames * per_frame:
            raise ValueError(
                f"row {record['utterance_id']} holds {flat.shape[0]} tokens but n_frames × tokens_per_frame = "
                f"{n_frames} × {per_frame}; the token file is damaged, re-run `speechtok tokenize`"
            )
        rows.append(
            TokenRow(
                utterance_id=str(record["utterance_id"]),
                tokens=flat.reshape(n_frames, per_frame),  # frame-major: [n_frames * G] -> [n_frames, G]
                sample_rate=int(record["sample_rate"]),
                num_samples=int(record["num_samples"]),
                model_name=str(record["model_name"]),
                model_version=int(record["model_version"]),
            )
        )
    return rows


CodecSource = Callable[[str, int], Codec]


class RegistryCodecs:
    """`(model_name, model_version) -> Codec` from the MLflow registry, each version downloaded and loaded once.

    MLflow must already point at the registry that holds the versions (`storage.mlflow_io.use_tracking_uri`).
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], Codec] = {}

    def __call__(self, name: str, version: int) -> Codec:
        key = (name, version)
        if key not in self._loaded:
            self._loaded[key] = load_codec(f"models:/{name}/{version}").codec
        return self._loaded[key]


def decode_row(codec: Codec, row: TokenRow) -> np.ndarray:
    """Tokens of one row -> float32 waveform [num_samples] at the row's native `sample_rate`."""
    if row.tokens.shape[1] != codec.tokens_per_frame:
        raise ValueError(
            f"row {row.utterance_id} has {row.tokens.shape[1]} tokens per frame but {row.model_uri} decodes "
            f"{codec.tokens_per_frame}; the row's model_name/model_version do not match the registry"
        )
    audio = codec.decode(row.tokens, num_samples=row.num_samples, sample_rate=row.sample_rate)
    return audio.detach().cpu().numpy().astype(np.float32, copy=False)


def clip_name(utterance_id: str) -> str:
    """File name of a row's clip (ids are `{speaker}_{book}_{name}_{segment}`; '/' is kept out regardless)."""
    return utterance_id.replace("/", "_") + ".wav"


def detokenize(
    rows: list[TokenRow], codecs: CodecSource, output: str, s3: S3Settings | None = None, *, single_file: bool
) -> list[WrittenClip]:
    """Decode `rows` and write one WAV each: to the file `output` (`single_file`, exactly one row) or to
    `output/{utterance_id}.wav`. Clips are decoded one at a time, so each equals `Codec.decode` of its tokens."""
    if single_file and len(rows) != 1:
        raise ValueError(f"{len(rows)} rows selected for the single file {output}; select one row or pass a directory")
    names = [clip_name(row.utterance_id) for row in rows]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(
            f"the selection holds {duplicates[:3]} more than once (one per model version?); "
            "add WHERE model_version = V or pass --model-version"
        )
    written: list[WrittenClip] = []
    for row, name in zip(rows, names, strict=True):
        target: FileTarget = open_file_target(output if single_file else f"{output.rstrip('/')}/{name}", s3)
        audio = decode_row(codecs(row.model_name, row.model_version), row)
        write_wav(target, audio, row.sample_rate)
        written.append(WrittenClip(row.utterance_id, target.url, row.model_uri, row.sample_rate, row.num_samples))
    return written
