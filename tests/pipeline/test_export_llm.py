"""`export_llm` on generated audiobook token tables: exact round trips, layouts read back, splits, resume, windows."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.export import DocumentUnit, ExportConfig, ExportFormat, SpecialIds, plan_export, run_export
from pipeline.export.dataset import ExportWindows
from pipeline.export.flat import read_docs
from pipeline.export.index import locate, read_index
from pipeline.export.megatron import read_idx
from pipeline.export.meta import read_meta
from storage.fs import open_location
from token_tables import FRAME_RATE, TOKENS_PER_FRAME, Partition, write_book_table, write_token_table

SHARD_TOKENS = 2000  # a few shards per split on the generated table (~7,000 tokens)


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_book_table(tmp_path_factory.mktemp("tokens"), seed=4)


@pytest.fixture(scope="module")
def source_rows(table_dir: Path) -> pa.Table:
    """Every row of the token table, tokens included (the ground truth)."""
    files = sorted(table_dir.glob("model_version=1/split=*/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def export(table_dir: Path, out: Path, **options: object) -> Path:
    config = ExportConfig(shard_tokens=SHARD_TOKENS, **options)  # type: ignore[arg-type]
    run_export(plan_export(str(table_dir), config), str(out))
    return out


@pytest.fixture(scope="module")
def megatron_dir(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(table_dir, tmp_path_factory.mktemp("megatron"))


def expected_documents(rows: pa.Table, holdout: bool, per_book: bool, specials: SpecialIds) -> list[np.ndarray]:
    """The documents of a split written out the slow, obvious way: books in (speaker, book) order, utterances in
    source order, bos/sep/eos around them."""
    records = [r for r in rows.to_pylist() if r["holdout"] == holdout]
    records.sort(key=lambda r: (r["speaker"], r["book_id"], r["source_path"], r["segment_index"], r["utterance_id"]))
    groups: list[list[dict]] = []
    for record in records:
        key = (record["speaker"], record["book_id"])
        if per_book and groups and (groups[-1][0]["speaker"], groups[-1][0]["book_id"]) == key:
            groups[-1].append(record)
        else:
            groups.append([record])
    documents = []
    for group in groups:
        stream: list[int] = [] if specials.bos is None else [specials.bos]
        for i, record in enumerate(group):
            if i and specials.sep is not None:
                stream.append(specials.sep)
            stream.extend(record["tokens"])
        documents.append(np.array(stream + ([] if specials.eos is None else [specials.eos]), dtype=np.uint16))
    return documents


def exported_documents(out: Path, split: str) -> list[np.ndarray]:
    """The documents of a split as the Megatron index delimits them, shard after shard."""
    meta = read_meta(open_location(out))
    documents = []
    for shard in meta["splits"][split]["shards"]:
        tokens = np.fromfile(out / f"{shard['name']}.bin", dtype="<u2")
        idx = read_idx(out / f"{shard['name']}.idx")
        documents += [tokens[s : s + n] for s, n in zip(idx.token_starts, idx.lengths, strict=True)]
    return documents


@pytest.mark.parametrize(("split", "holdout"), [("train", False), ("validation", True)])
def test_documents_are_books_in_source_order_with_specials(
    megatron_dir: Path, source_rows: pa.Table, split: str, holdout: bool
) -> None:
    expected = expected_documents(source_rows, holdout, per_book=True, specials=SpecialIds())
    got = exported_documents(megatron_dir, split)
    assert len(got) == len(expected) > 1
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_round_trip_through_index_equals_parquet_tokens(megatron_dir: Path, source_rows: pa.Table) -> None:
    index = read_index(open_location(megatron_dir))
    assert sorted(index.column("utterance_id").to_pylist()) == sorted(source_rows.column("utterance_id").to_pylist())
    truth = {r["utterance_id"]: r["tokens"] for r in source_rows.select(["utterance_id", "tokens"]).to_pylist()}
    bins = {name: np.fromfile(megatron_dir / f"{name}.bin", dtype="<u2") for name in set(index["shard"].to_pylist())}
    for row in index.to_pylist():
        got = bins[row["shard"]][row["offset"] : row["offset"] + row["length"]]
        assert got.tolist() == truth[row["utterance_id"]], row["utterance_id"]
        assert row["length"] == row["n_frames"] * TOKENS_PER_FRAME
    # Every token of every file is an utterance's or one special: nothing unaccounted for.
    covered = sum(row["length"] for row in index.to_pylist())
    specials = sum(int(np.isin(b, [16384, 16385, 16386]).sum()) for b in bins.values())
    assert covered + specials == sum(b.size for b in bins.values())


def test_megatron_core_reads_the_pair(megatron_dir: Path, source_rows: pa.Table) -> None:
    """megatron-core's own reader (installed on CPU: megatron-core 0.16.1) on every shard of both splits."""
    indexed_dataset = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    meta = read_meta(open_location(megatron_dir))
    for split, holdout in (("train", False), ("validation", True)):
        got = []
        for shard in meta["splits"][split]["shards"]:
            dataset = indexed_dataset.IndexedDataset(str(megatron_dir / shard["name"]))
            assert dataset.index.dtype == np.uint16
            np.testing.assert_array_equal(dataset.document_indices, np.arange(len(dataset) + 1))
            # Copies: the reader's arrays view its mmap, which it closes when it is collected.
            got += [dataset[i].copy() for i in range(len(dataset))]
        expected = expected_documents(source_rows, holdout, per_book=True, specials=SpecialIds())
        assert [g.tolist() for g in got] == [e.tolist() for e in expected]


def test_flat_layout_per_utterance_without_specials(table_dir: Path, source_rows: pa.Table, tmp_path: Path) -> None:
    specials = SpecialIds(bos=None, eos=None, sep=None)
    out = export(table_dir, tmp_path, format=ExportFormat.flat, document=DocumentUnit.utterance, specials=specials)
    meta = read_meta(open_location(out))
    assert meta["special_ids"] == {} and meta["layout"] == "flat"
    for split, holdout in (("train", False), ("validation", True)):
        documents = []
        for shard in meta["splits"][split]["shards"]:
            tokens = np.memmap(out / shard["files"][0], dtype=np.uint16, mode="r")
            starts = read_docs(out / shard["files"][1])
            assert starts[-1] == tokens.size == shard["tokens"]
            documents += [tokens[a:b] for a, b in itertools.pairwise(starts)]
        expected = expected_documents(source_rows, holdout, per_book=False, specials=specials)
        assert [d.tolist() for d in documents] == [e.tolist() for e in expected]
        assert meta["splits"][split]["documents"] == meta["splits"][split]["utterances"] == len(expected)


def test_hold_out_speakers_only_in_validation(megatron_dir: Path, source_rows: pa.Table) -> None:
    index = read_index(open_location(megatron_dir))
    train = set(read_index(open_location(megatron_dir), "train")["speaker"].to_pylist())
    validation = set(read_index(open_location(megatron_dir), "validation")["speaker"].to_pylist())
    held = set(source_rows.filter(source_rows["holdout"])["speaker"].to_pylist())
    assert validation == held and not train & held and train
    assert set(pc.unique(index["shard"]).to_pylist()) == {
        s["name"] for split in read_meta(open_location(megatron_dir))["splits"].values() for s in split["shards"]
    }


def test_meta_counts_match_files_and_table(megatron_dir: Path, source_rows: pa.Table) -> None:
    meta = json.loads((megatron_dir / "meta.json").read_text())
    assert meta["format"] == "speechtok-llm-export" and meta["format_version"] == 1
    assert meta["token_space"] == 16_387 and meta["dtype"] == "uint16"
    assert meta["vocab_size"] == 16_384 and meta["tokens_per_frame"] == TOKENS_PER_FRAME
    assert meta["frame_rate"] == FRAME_RATE and meta["special_ids"] == {"bos": 16384, "eos": 16385, "sep": 16386}
    for split, holdout in (("train", False), ("validation", True)):
        rows = source_rows.filter(pc.equal(source_rows["holdout"], holdout))
        counts = meta["splits"][split]
        assert counts["utterances"] == rows.num_rows
        assert counts["content_tokens"] == int(pc.sum(rows["n_frames"]).as_py()) * TOKENS_PER_FRAME
        on_disk = sum((megatron_dir / s["files"][0]).stat().st_size for s in counts["shards"]) // 2
        assert counts["tokens"] == on_disk == counts["content_tokens"] + counts["special_tokens"]
        idx_documents = sum(read_idx(megatron_dir / s["files"][1]).lengths.size for s in counts["shards"])
        assert counts["documents"] == idx_documents == len(pc.unique(rows["book_id"]))
        assert counts["speakers"] == len(pc.unique(rows["speaker"]))


def test_manifest_digest_is_the_tables(megatron_dir: Path, table_dir: Path) -> None:
    import hashlib

    meta = read_meta(open_location(megatron_dir))
    digest = hashlib.sha256((table_dir / "model_version=1" / "_manifest.json").read_bytes()).hexdigest()
    assert meta["source"]["manifest_sha256"] == digest and meta["model"]["version"] == "1"


def test_index_maps_a_token_to_its_second_of_audio(megatron_dir: Path, source_rows: pa.Table) -> None:
    index = read_index(open_location(megatron_dir), "train")
    row = index.slice(index.num_rows // 2, 1).to_pylist()[0]
    frame = row["n_frames"] - 1
    point = locate(index, row["shard"], row["offset"] + frame * TOKENS_PER_FRAME + 5, TOKENS_PER_FRAME, FRAME_RATE)
    assert (point.utterance_id, point.frame) == (row["utterance_id"], frame)
    assert point.second == pytest.approx(row["start_s"] + frame / FRAME_RATE)
    source = source_rows.filter(pc.equal(source_rows["utterance_id"], row["utterance_id"])).to_pylist()[0]
    assert point.source_path == source["source_path"] and source["start_s"] <= point.second < source["end_s"]
    with pytest.raises(LookupError, match="special"):
        locate(index, row["shard"], row["offset"] - 1, TOKENS_PER_FRAME, FRAME_RATE)


def digests(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_interrupted_export_resumed_gives_identical_files(megatron_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    plan = plan_export(str(table_dir), ExportConfig(shard_tokens=SHARD_TOKENS))
    written: list[int] = []

    def crash_after_two_shards(tokens: int) -> None:
        written.append(tokens)
        if len(list((tmp_path / "_markers").glob("*.json"))) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_export(plan, str(tmp_path), progress=crash_after_two_shards)
    assert not (tmp_path / "meta.json").exists()
    # A half-written leftover from the killed run must not be trusted.
    leftover = sorted(tmp_path.glob("*.bin"))[-1]
    leftover.write_bytes(b"\0" * 10)
    resumed = run_export(plan_export(str(table_dir), ExportConfig(shard_tokens=SHARD_TOKENS)), str(tmp_path))
    assert resumed.shards_reused == 1 and resumed.shards_written == len(plan.shards) - 1
    assert digests(tmp_path) == digests(megatron_dir)
    again = run_export(plan, str(tmp_path))
    assert again.shards_written == 0 and digests(tmp_path) == digests(megatron_dir)


def test_a_one_row_group_cache_writes_the_same_bytes(megatron_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    """Books spread over files and row groups: with one cached row group, evicted groups are re-read, same files."""
    export(table_dir, tmp_path, cache_row_groups=1)
    assert digests(tmp_path) == digests(megatron_dir)


def test_changed_layout_rewrites_and_removes_stale_shards(table_dir: Path, tmp_path: Path) -> None:
    export(table_dir, tmp_path)
    smaller = ExportConfig(shard_tokens=10**9, format=ExportFormat.flat)
    summary = run_export(plan_export(str(table_dir), smaller), str(tmp_path))
    assert summary.shards_reused == 0
    names = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert names == {"train-00000.bin", "train-00000.docs.npy", "validation-00000.bin", "validation-00000.docs.npy"} | {
        "index.parquet",
        "meta.json",
    }


def test_windows_start_on_frame_boundaries(megatron_dir: Path) -> None:
    index = read_index(open_location(megatron_dir), "train")
    seq_len = 4 * TOKENS_PER_FRAME
    for within in (False, True):
        windows = ExportWindows(str(megatron_dir), "train", seq_len, within_documents=within)
        assert len(windows) > 10
        previous: dict[str, int] = {}
        for i in range(len(windows)):
            position = windows.position(i)
            rows = index.filter(pc.equal(index["shard"], position.shard))
            offsets = rows["offset"].to_numpy()
            row = int(np.searchsorted(offsets, position.start, side="right")) - 1
            assert 0 <= position.start - offsets[row] < rows["length"][row].as_py()
            assert (position.start - offsets[row]) % TOKENS_PER_FRAME == 0
            assert position.start >= previous.get(position.shard, 0)  # windows never overlap
            previous[position.shard] = position.start + seq_len
            tokens = np.fromfile(megatron_dir / f"{position.shard}.bin", dtype="<u2")
            window = windows[i]
            assert (
                window.shape == (seq_len,)
                and window.tolist() == tokens[position.start : position.start + seq_len].tolist()
            )
            if within:
                idx = read_idx(megatron_dir / f"{position.shard}.idx")
                document = int(np.searchsorted(idx.token_starts, position.start, side="right")) - 1
                assert position.start + seq_len <= idx.token_starts[document] + idx.lengths[document]


def test_windows_per_utterance_are_whole_frames(table_dir: Path, tmp_path: Path) -> None:
    out = export(table_dir, tmp_path, document=DocumentUnit.utterance)
    windows = ExportWindows(str(out), "validation", 2 * TOKENS_PER_FRAME, within_documents=True)
    assert len(windows) > 0
    stacked = np.stack([windows[i].numpy() for i in range(len(windows))])
    assert stacked.max() < 16_384  # never a special id: windows are whole frames of one utterance


def test_a_split_without_rows_has_no_shards(tmp_path: Path) -> None:
    table = write_book_table(tmp_path / "tokens", speakers=1, files=1)  # the only speaker is held out
    summary = run_export(plan_export(str(table), ExportConfig()), str(tmp_path / "out"))
    train = summary.meta["splits"]["train"]
    assert (train["utterances"], train["tokens"], train["shards"]) == (0, 0, [])
    assert summary.meta["splits"]["validation"]["utterances"] > 0
    assert len(ExportWindows(str(tmp_path / "out"), "train", 38)) == 0


def test_seq_len_must_be_whole_frames(megatron_dir: Path) -> None:
    with pytest.raises(ValueError, match="whole number of frames"):
        ExportWindows(str(megatron_dir), "train", 100)


@pytest.mark.parametrize(
    ("specials", "message"),
    [
        (SpecialIds(bos=100), "out of range"),
        (SpecialIds(bos=70_000), "out of range"),
        (SpecialIds(sep=16384), "differ"),
    ],
)
def test_bad_special_ids_are_refused(table_dir: Path, specials: SpecialIds, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_export(str(table_dir), ExportConfig(specials=specials))


def test_model_version_must_be_chosen_when_several(tmp_path: Path) -> None:
    write_book_table(tmp_path, version=1, files=1)
    write_book_table(tmp_path, version=2, files=1)
    with pytest.raises(LookupError, match=r"\['1', '2'\].*--model-version"):
        plan_export(str(tmp_path), ExportConfig())
    assert plan_export(str(tmp_path), ExportConfig(), model_version="2").source.model_version == "2"
    with pytest.raises(LookupError, match="no model_version=3"):
        plan_export(str(tmp_path), ExportConfig(), model_version="3")


def test_table_without_manifest_or_with_mixed_holdout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain" / "model_version=1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"_manifest\.json is missing"):
        plan_export(str(tmp_path / "plain"), ExportConfig())
    foreign = write_token_table(tmp_path / "foreign", partitions=[Partition(1, "small", 4)])  # manifest {"format": "x"}
    with pytest.raises(ValueError, match="format 'x'"):
        plan_export(str(foreign), ExportConfig())
    table = write_book_table(tmp_path / "mixed", files=1)
    path = next(table.glob("model_version=1/split=small/*.parquet"))
    rows = pq.read_table(path)
    flipped = rows.set_column(
        rows.schema.get_field_index("holdout"), "holdout", pa.array([True] + [False] * (rows.num_rows - 1))
    )
    pq.write_table(flipped, path)
    with pytest.raises(ValueError, match="holdout true and false"):
        plan_export(str(table), ExportConfig())
