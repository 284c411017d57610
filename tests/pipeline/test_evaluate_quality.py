"""The optional evaluation metrics (issue 13) on real espeak-ng speech: identical audio → dWER 0 and speaker
similarity ≈ 1, another voice scores clearly lower, ABX separates phone-identity features and not random ones,
Codec2 gets better with bit rate, and a missing package is reported as skipped instead of crashing."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import soxr

from pipeline.evaluate.abx import AbxFile, abx_error_rates
from pipeline.evaluate.asr import Recognizer, word_error_rate
from pipeline.evaluate.baselines.codec2 import Codec2Baseline
from pipeline.evaluate.metrics import pesq_wb, stoi
from pipeline.evaluate.optional import INSTALL_HINT
from pipeline.evaluate.quality import Dnsmos, mel_cepstral_distortion
from pipeline.evaluate.references import clip_reference
from pipeline.evaluate.speaker import SpeakerEncoder, cosine
from pipeline.evaluate.suite import QualitySuite, Timings
from pipeline.sample_corpus.phones import align

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/setup.sh)")
RATE = 16_000
TEXTS = (
    "the quick brown fox jumps over the lazy dog near the river bank",
    "she sells sea shells by the sea shore every summer morning",
    "a big black bug bit a big black bear on the mountain",
)
VOICES = (("en-us+f3", 70, 160), ("en+m3", 25, 150))


def speak(text: str, voice: tuple[str, int, int]) -> np.ndarray:
    """espeak-ng `text` in `voice` at 16 kHz: [L] float32."""
    name, pitch, speed = voice
    command = ["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(speed), "--stdout", text]
    audio, rate = soundfile.read(io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout))
    return soxr.resample(audio, rate, RATE).astype(np.float32)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer()


@pytest.fixture(scope="module")
def speaker_encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def test_identical_audio_has_zero_dwer_and_a_readable_transcript(recognizer: Recognizer) -> None:
    audio = speak(TEXTS[0], VOICES[0])
    first, again = recognizer.transcribe(audio, RATE), recognizer.transcribe(audio.copy(), RATE)
    assert word_error_rate(first, again) == 0.0
    assert word_error_rate(TEXTS[0], first) < 0.5  # tiny.en understands espeak-ng
    assert word_error_rate(TEXTS[0], recognizer.transcribe(np.zeros_like(audio), RATE)) > 0.9


def test_speaker_similarity_is_one_for_identical_audio_and_lower_for_another_voice(
    speaker_encoder: SpeakerEncoder,
) -> None:
    same = [speaker_encoder.embed(speak(text, VOICES[0]), RATE) for text in TEXTS[:2]]
    other = speaker_encoder.embed(speak(TEXTS[0], VOICES[1]), RATE)
    assert cosine(same[0], speaker_encoder.embed(speak(TEXTS[0], VOICES[0]), RATE)) == pytest.approx(1.0, abs=1e-4)
    # Another sentence by the same voice stays close; the same sentence by another voice is clearly lower.
    assert cosine(same[0], other) < cosine(same[0], same[1]) - 0.1
    assert cosine(same[0], other) < 0.8


def test_dnsmos_and_mcd() -> None:
    audio = speak(TEXTS[1], VOICES[0])
    scores = Dnsmos().score(audio, RATE)
    assert all(1.0 <= value <= 5.0 for value in scores.values()), scores
    assert mel_cepstral_distortion(audio, audio, RATE) == 0.0
    noisy = audio + np.random.default_rng(0).normal(0, 0.02, audio.shape).astype(np.float32)
    assert mel_cepstral_distortion(audio, noisy, RATE) > 1.0


@pytest.fixture(scope="module")
def phone_files() -> list[tuple[str, str, float, list[tuple[str, float, float]]]]:
    """(file id, speaker, seconds, phones) of every text in both voices, timed by libespeak-ng."""
    files = []
    for speaker, voice in enumerate(VOICES):
        for index, text in enumerate(TEXTS):
            alignment = align(text, *voice)
            phones = [(p.phone, p.start_s, p.end_s) for p in alignment.phones]
            files.append((f"s{speaker}_{index}", str(speaker), alignment.num_samples / alignment.sample_rate, phones))
    return files


def test_abx_separates_phone_identity_and_not_random_features(phone_files) -> None:  # type: ignore[no-untyped-def]
    inventory = sorted({phone for *_, phones in phone_files for phone, _, _ in phones})
    step = 0.01
    identity, noise = [], []
    rng = np.random.default_rng(0)
    for file_id, speaker, seconds, phones in phone_files:
        frames = int(seconds / step) + 1
        one_hot = np.full((frames, len(inventory)), 1e-3, dtype=np.float32)  # [T, phones]
        for phone, start, end in phones:
            one_hot[int(start / step) : int(end / step) + 1, inventory.index(phone)] = 1.0
        identity.append(AbxFile(file_id, speaker, one_hot, step, phones))
        noise.append(AbxFile(file_id, speaker, rng.normal(size=(frames, 16)).astype(np.float32), step, phones))
    separated = abx_error_rates(identity)
    assert separated["within"] < 0.05 and separated["across"] < 0.05, separated
    chance = abx_error_rates(noise)
    assert all(0.35 < value < 0.65 for value in chance.values()), chance


def test_phone_timings_match_the_espeak_program() -> None:
    name, pitch, speed = VOICES[0]
    alignment = align(TEXTS[0], name, pitch, speed)
    command = ["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(speed), "--stdout", TEXTS[0]]
    audio, rate = soundfile.read(io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout))
    assert rate == alignment.sample_rate
    # The library's samples are the program's, less its trailing pause: the timings describe the same audio.
    assert 0.8 * len(audio) < alignment.num_samples <= len(audio)
    assert alignment == align(TEXTS[0], name, pitch, speed)  # deterministic
    starts = [p.start_s for p in alignment.phones]
    assert starts == sorted(starts) and len(alignment.phones) > 20
    assert {"f", "k", "s"} <= {p.phone for p in alignment.phones}


def test_codec2_gets_better_with_bit_rate() -> None:
    audio = speak(TEXTS[0], VOICES[0])
    scores = {}
    for name in ("codec2_700c", "codec2_2400"):
        decoded = Codec2Baseline.of(name).reconstruct(audio, RATE)
        assert decoded.shape == audio.shape
        scores[name] = (pesq_wb(audio, decoded, RATE), stoi(audio, decoded, RATE))
    assert scores["codec2_2400"][0] > scores["codec2_700c"][0]
    assert scores["codec2_2400"][1] > scores["codec2_700c"][1]


def test_missing_package_is_skipped_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("faster_whisper", "resemblyzer", "speechmos.dnsmos", "pyworld"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    suite = QualitySuite(("asr", "speaker", "dnsmos", "mcd"), Timings())
    assert set(suite.skipped) == {"asr", "speaker", "dnsmos", "mcd"}
    assert all(INSTALL_HINT in why for why in suite.skipped.values())
    assert suite.recognizer is None and suite.speaker is None and suite.dnsmos is None and not suite.mcd


def test_reference_text_only_when_the_window_holds_whole_utterances() -> None:
    utterances = [
        {"start": 1.0, "end": 2.0, "text": "one two", "phones": [["w", 1.0, 1.2], ["V", 1.2, 2.0]]},
        {"start": 3.0, "end": 5.0, "text": "three", "phones": [["T", 3.0, 5.0]]},
    ]
    whole = clip_reference(utterances, 1.0, 4.0)
    assert whole.text == "one two three" and whole.phones[0] == ("w", 0.0, 0.2)
    cut = clip_reference(utterances, 1.0, 2.5)
    assert cut.text is None and "cuts an utterance" in cut.why and [p[0] for p in cut.phones] == ["w", "V"]
