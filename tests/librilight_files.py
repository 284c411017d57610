"""Low-level builders for LibriLight-shaped test corpora, including every kind of bad input (issue 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16_000


def tone_with_pauses(seconds_on: list[float], pause: float = 0.5, sample_rate: int = SAMPLE_RATE, seed: int = 0):
    """A speech stand-in: loud noise bursts separated by near-silence; returns (int16 samples, regions)."""
    rng = np.random.default_rng(seed)
    pieces, regions, cursor = [], [], pause
    pieces.append(np.zeros(int(pause * sample_rate)))
    for length in seconds_on:
        burst = rng.normal(0, 0.3, int(length * sample_rate)) * np.hanning(int(length * sample_rate)) ** 0.1
        pieces.append(burst)
        regions.append([round(cursor, 4), round(cursor + length, 4)])
        cursor += length
        pieces.append(np.zeros(int(pause * sample_rate)))
        cursor += pause
    audio = np.concatenate(pieces) + rng.normal(0, 1e-4, sum(len(p) for p in pieces))
    return np.clip(audio * 32767, -32768, 32767).astype(np.int16), regions


def librilight_json(speaker: str, book: str, voice_activity: list[list[float]] | None) -> dict:
    payload: dict = {
        "speaker": speaker,
        "book_meta": {
            "id": book,
            "title": "Test Book",
            "authors": [{"first_name": "A", "last_name": "B"}],
            "genre": ["Fiction"],
        },
        "snr": 20.0,
    }
    if voice_activity is not None:
        payload["voice_activity"] = voice_activity
    return payload


def write_entry(
    root: Path,
    speaker: str,
    book: str,
    name: str,
    samples: np.ndarray,
    voice_activity: list[list[float]] | None,
    *,
    split: str = "small",
    sample_rate: int = SAMPLE_RATE,
    extension: str = "flac",
    subtype: str = "PCM_16",
    json_text: str | None = None,
    with_json: bool = True,
) -> Path:
    """Write `{split}/{speaker}/{book}/{name}.{extension}` and its JSON; returns the audio path."""
    directory = root / split / speaker / book
    directory.mkdir(parents=True, exist_ok=True)
    audio_path = directory / f"{name}.{extension}"
    soundfile.write(audio_path, samples, sample_rate, format=extension.upper(), subtype=subtype)
    if with_json:
        text = json_text if json_text is not None else json.dumps(librilight_json(speaker, book, voice_activity))
        (directory / f"{name}.json").write_text(text)
    return audio_path


def seed_bad_inputs(root: Path) -> dict[str, str]:
    """Add one file of every bad-input kind; returns {relative audio path: expected reason or note}."""
    samples, regions = tone_with_pauses([1.0, 1.5], seed=7)
    expected: dict[str, str] = {}

    path = write_entry(root, "900", "1", "corrupt", samples, regions)
    data = bytearray(path.read_bytes())
    data[200:] = bytes(len(data) - 200)  # keep the header, zero the frames
    path.write_bytes(bytes(data))
    expected["small/900/1/corrupt.flac"] = "reject"

    path = write_entry(root, "900", "1", "truncated", samples, regions)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    expected["small/900/1/truncated.flac"] = "truncated_audio"

    path = root / "small" / "900" / "1" / "empty.flac"
    path.write_bytes(b"")
    (root / "small" / "900" / "1" / "empty.json").write_text(json.dumps(librilight_json("900", "1", regions)))
    expected["small/900/1/empty.flac"] = "empty_audio"

    write_entry(root, "900", "1", "zero_length", np.zeros(0, dtype=np.int16), [])
    expected["small/900/1/zero_length.flac"] = "empty_audio"

    write_entry(root, "900", "2", "no_json", samples, regions, with_json=False)
    expected["small/900/2/no_json.flac"] = "missing_json"

    write_entry(root, "900", "2", "bad_json", samples, regions, json_text="{not json")
    expected["small/900/2/bad_json.flac"] = "malformed_json"

    write_entry(
        root,
        "900",
        "2",
        "bad_vad",
        samples,
        None,
        json_text=json.dumps({**librilight_json("900", "2", None), "voice_activity": [[2.0, 1.0]]}),
    )
    expected["small/900/2/bad_vad.flac"] = "malformed_json"

    write_entry(root, "901", "3", "no_vad", samples, None)
    expected["small/901/3/no_vad.flac"] = "energy VAD"

    stereo = np.stack([samples, samples // 2], axis=1)
    write_entry(root, "901", "3", "stereo", stereo, regions)
    expected["small/901/3/stereo.flac"] = "downmixed"

    write_entry(
        root, "901", "3", "rate44k", tone_with_pauses([1.0], sample_rate=44_100)[0], [[0.5, 1.5]], sample_rate=44_100
    )
    expected["small/901/3/rate44k.flac"] = "sample rate 44100"

    floats = samples.astype(np.float32) / 32768
    floats[100] = np.nan
    write_entry(root, "901", "4", "nan", floats, regions, extension="wav", subtype="FLOAT")
    expected["small/901/4/nan.wav"] = "non_finite_audio"

    (root / "small" / "901" / "4" / "folder.flac").mkdir(parents=True)
    expected["small/901/4/folder.flac"] = "unreadable"

    (root / "small" / "stray.flac").write_bytes(b"fLaC")
    expected["small/stray.flac"] = "bad_layout"
    return expected
