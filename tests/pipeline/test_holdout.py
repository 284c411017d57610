"""Speaker-level hold-out: deterministic, hash-based, topped up for tiny corpora."""

from __future__ import annotations

from pipeline.sharding.holdout import holdout_speakers


def test_holdout_is_deterministic_and_near_the_fraction() -> None:
    speakers = [str(i) for i in range(5000)]
    first = holdout_speakers(speakers, 0.02, 1, "salt")
    assert first == holdout_speakers(list(reversed(speakers)), 0.02, 1, "salt")
    assert 70 <= len(first) <= 130  # 2% of 5000 = 100, binomial spread
    assert first != holdout_speakers(speakers, 0.02, 1, "other-salt")


def test_membership_is_stable_as_the_corpus_grows() -> None:
    small = holdout_speakers([str(i) for i in range(1000)], 0.05, 0, "s")
    large = holdout_speakers([str(i) for i in range(3000)], 0.05, 0, "s")
    assert small <= large


def test_small_corpus_gets_a_holdout_speaker_but_keeps_one_for_training() -> None:
    assert len(holdout_speakers(["1", "2", "3"], 0.0, 1, "s")) == 1
    assert holdout_speakers(["only"], 0.02, 1, "s") == frozenset()
