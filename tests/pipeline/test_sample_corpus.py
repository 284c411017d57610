"""The sample-corpus generator writes a LibriLight-shaped corpus whose metadata describes its audio exactly."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from builders import make_sample_corpus
from pipeline.sample_corpus import (
    BackendUnavailableError,
    SampleCorpusConfig,
    generate_sample_corpus,
    resolve_backend,
)
from pipeline.sample_corpus.config import Backend
from pipeline.sample_corpus.plan import Stream, file_lengths, stream_rng
from pipeline.sample_corpus.voices import speaker_voice
from pipeline.sharding.segments import parse_voice_activity

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
BACKENDS = [
    "synthetic",
    pytest.param("espeak", marks=pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed")),
]
NAME = re.compile(r"^[a-z0-9]+_\d{2}_[a-z0-9]+_64kb$")  # LibriVox file stems: no dots, no spaces
FRAME = 160  # 10 ms at 16 kHz
EDGE = 0.02  # seconds kept clear of region boundaries when judging "outside"


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 speakers, 45 s in all, two books for the first speakers: shared read-only by the tests below."""
    return make_sample_corpus(
        tmp_path_factory.mktemp(request.param),
        speakers=3,
        minutes=1.0,
        seed=0,
        backend=request.param,
        books_per_speaker=2,
        min_file_seconds=8.0,
        max_file_seconds=12.0,
    )


def _audio_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.flac"))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _frame_rms(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frame centre times in s, RMS in full-scale units) for 10 ms frames of int16 samples `[T]`."""
    count = len(samples) // FRAME
    frames = samples[: count * FRAME].astype(np.float64).reshape(count, FRAME) / 32768  # [n_frames, FRAME]
    return (np.arange(count) + 0.5) * FRAME / 16_000, np.sqrt(np.mean(frames**2, axis=1))


def _median_f0(samples: np.ndarray, sample_rate: int = 16_000) -> float:
    """Median autocorrelation pitch (60-400 Hz) over the loud 40 ms frames of `[T]`."""
    width = int(0.04 * sample_rate)
    count = len(samples) // width
    frames = samples[: count * width].astype(np.float64).reshape(count, width)  # [n_frames, width]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    frames = frames[rms > 0.3 * rms.max()]
    frames -= frames.mean(axis=1, keepdims=True)
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * width)) ** 2)[:, :width]
    low, high = sample_rate // 400, sample_rate // 60
    lags = low + np.argmax(autocorrelation[:, low:high], axis=1)
    return float(np.median(sample_rate / lags))


def test_layout_is_librilights(corpus: Path) -> None:
    files = _audio_files(corpus)
    assert len(files) >= 3
    for audio in files:
        split, speaker, book, _ = audio.relative_to(corpus).parts
        assert split == "small"
        assert speaker.isdigit() and book.isdigit()
        assert NAME.match(audio.stem), audio.stem
        assert audio.with_suffix(".json").is_file()
    assert {path.relative_to(corpus).parts[1] for path in files} == set(p.name for p in (corpus / "small").iterdir())
    assert len({path.relative_to(corpus).parts[1] for path in files}) == 3
    assert not list(corpus.rglob(".*.partial"))


def test_audio_is_16k_mono_pcm16_flac(corpus: Path) -> None:
    for audio in _audio_files(corpus):
        info = soundfile.info(audio)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16_000, 1)


def test_json_has_librilight_fields(corpus: Path) -> None:
    for audio in _audio_files(corpus):
        payload = json.loads(audio.with_suffix(".json").read_text())
        _, speaker, book, _ = audio.relative_to(corpus).parts
        assert payload["speaker"] == speaker
        meta = payload["book_meta"]
        assert meta["id"] == book
        for key in (
            "title",
            "description",
            "url_text_source",
            "language",
            "copyright_year",
            "num_sections",
            "url_rss",
            "url_zip_file",
            "url_project",
            "url_librivox",
            "totaltime",
            "meta_genre",
        ):
            assert isinstance(meta[key], str), key
        assert "url_other" in meta
        assert isinstance(meta["totaltimesecs"], int)
        assert isinstance(meta["Dramatic Readings"], bool)
        assert meta["genre"] and all(isinstance(genre, str) for genre in meta["genre"])
        (author,) = meta["authors"]
        assert set(author) == {"id", "first_name", "last_name", "dob", "dod"}
        sections = len(list(audio.parent.glob("*.flac")))
        assert meta["num_sections"] == str(sections)
        assert isinstance(payload["snr"], float) and 15 < payload["snr"] < 60
        assert all(isinstance(value, float) for region in payload["voice_activity"] for value in region)


def test_voice_activity_matches_the_audio(corpus: Path) -> None:
    region_count = 0
    for audio in _audio_files(corpus):
        samples, rate = soundfile.read(audio, dtype="int16")
        duration = len(samples) / rate
        regions = json.loads(audio.with_suffix(".json").read_text())["voice_activity"]
        assert regions
        region_count += len(regions)
        starts = np.array([start for start, _ in regions])
        ends = np.array([end for _, end in regions])
        assert np.all(starts < ends) and np.all(ends[:-1] < starts[1:]), "sorted and non-overlapping"
        assert starts[0] > 0 and ends[-1] < duration
        parse_voice_activity(regions, duration, audio.name)  # the sharder's own validation accepts it

        times, rms = _frame_rms(samples)
        inside = np.zeros(len(times), dtype=bool)
        near = np.zeros(len(times), dtype=bool)
        for start, end in regions:
            inside |= (times >= start) & (times <= end)
            near |= (times >= start - EDGE) & (times <= end + EDGE)
        outside = rms[~near]
        # Outside the regions there is only the noise floor (config: -65..-45 dBFS), flat and quiet.
        assert 20 * np.log10(outside.max()) < -40
        assert outside.max() < 2 * np.median(outside)
        for start, end in regions:
            region = rms[(times >= start) & (times <= end)]
            assert 20 * np.log10(region.max()) > -30, f"{audio.name}: region {start}-{end} has no speech"
            assert np.sqrt(np.mean(region**2)) > 10 * np.median(outside)
        # The stated SNR is what the audio shows: power inside the regions over power outside them.
        measured = 10 * np.log10(np.mean(rms[inside] ** 2) / np.mean(outside**2))
        stated = json.loads(audio.with_suffix(".json").read_text())["snr"]
        assert measured == pytest.approx(stated, abs=1.5)
    assert region_count > len(_audio_files(corpus)), "files hold several utterances, so pauses are exercised"


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, backend: Backend) -> None:
    def build(folder: str, seed: int) -> dict[str, bytes]:
        return _tree_bytes(make_sample_corpus(tmp_path / folder, speakers=2, minutes=0.3, seed=seed, backend=backend))

    first, again, other = build("a", 5), build("b", 5), build("c", 6)
    assert first == again
    assert first.keys() != other.keys()
    flac_first = {data for name, data in first.items() if name.endswith(".flac")}
    assert not flac_first & {data for name, data in other.items() if name.endswith(".flac")}


@pytest.mark.parametrize("minutes", [0.2, 1.5])
def test_minutes_are_honoured(tmp_path: Path, minutes: float) -> None:
    config = SampleCorpusConfig(
        speakers=2, minutes=minutes, seed=1, backend="synthetic", min_file_seconds=10.0, max_file_seconds=20.0
    )
    summary = generate_sample_corpus(tmp_path, config)
    on_disk = sum(soundfile.info(path).duration for path in _audio_files(tmp_path))
    assert summary.total_seconds == pytest.approx(on_disk)
    assert on_disk == pytest.approx(minutes * 60, abs=config.max_file_seconds)
    assert summary.num_files == len(_audio_files(tmp_path))
    assert summary.speakers == 2 and summary.backend == "synthetic"
    assert summary.speech_seconds < summary.total_seconds


def test_file_lengths_split_the_budget() -> None:
    rng = stream_rng(0, Stream.SPEAKER, 0)
    for budget in (5.0, 25.0, 61.0, 600.0):
        lengths = file_lengths(budget, 20.0, 60.0, rng)
        assert sum(lengths) == pytest.approx(budget, abs=0.01)
        assert all(20.0 - 1e-6 <= length <= 60.0 + 1e-6 for length in lengths) or lengths == [budget]


@pytest.mark.parametrize("backend", BACKENDS)
def test_speakers_sound_different(tmp_path: Path, backend: Backend) -> None:
    root = make_sample_corpus(tmp_path, speakers=2, minutes=0.3, backend=backend)
    pitches = [_median_f0(soundfile.read(path, dtype="int16")[0]) for path in _audio_files(root)]
    # Voices alternate male/female, so the two speakers sit far apart in pitch.
    assert max(pitches) > 1.3 * min(pitches), pitches


def test_voices_are_distinct_per_speaker() -> None:
    voices = [speaker_voice(str(index), index, stream_rng(0, Stream.SPEAKER, index)) for index in range(60)]
    assert len({(voice.espeak_voice, voice.espeak_pitch) for voice in voices}) == 60
    assert len({(voice.f0_hz, voice.formant_scale) for voice in voices}) == 60


def test_missing_espeak_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(BackendUnavailableError, match=r"apt-get install espeak-ng.*synthetic"):
        resolve_backend("espeak", 16_000)
    assert resolve_backend("auto", 16_000).name == "synthetic"


def test_refuses_a_non_empty_split_unless_overwrite(tmp_path: Path) -> None:
    config = SampleCorpusConfig(speakers=1, minutes=0.1, backend="synthetic")
    (tmp_path / "small" / "stray").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_sample_corpus(tmp_path, config)
    seen: list[str] = []
    summary = generate_sample_corpus(tmp_path, config, overwrite=True, on_file=lambda item: seen.append(item.audio))
    assert not (tmp_path / "small" / "stray").exists()
    assert seen == [item.audio for item in summary.files]


def test_silent_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_sample_corpus(tmp_path, SampleCorpusConfig(speakers=1, minutes=0.1, backend="synthetic"))
    assert capsys.readouterr() == ("", "")


def test_config_rejects_inverted_ranges() -> None:
    with pytest.raises(ValueError, match="min_file_seconds"):
        SampleCorpusConfig(min_file_seconds=30, max_file_seconds=10)
