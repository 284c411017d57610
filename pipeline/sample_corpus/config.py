"""Typed configuration of the sample-corpus generator (issue 2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backend = Literal["auto", "espeak", "synthetic"]


class SampleCorpusConfig(BaseModel):
    """What a generated LibriLight-shaped corpus contains; the same config and seed give the same bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    speakers: int = Field(default=4, ge=1, le=9000, description="number of distinct speakers (voices)")
    minutes: float = Field(default=5.0, gt=0, description="total audio minutes across all speakers (±1 file)")
    seed: int = Field(default=0, ge=0, description="drives every random choice: ids, text, voices, pauses, noise")
    split: str = Field(default="small", min_length=1, description="top-level folder, as LibriLight's small/medium")
    sample_rate: int = Field(default=16_000, gt=0, description="LibriLight is 16 kHz mono")
    books_per_speaker: int = Field(default=2, ge=1, description="books each speaker reads; files rotate over them")
    min_file_seconds: float = Field(default=20.0, gt=0, description="shortest file (unless the budget is smaller)")
    max_file_seconds: float = Field(default=60.0, gt=0, description="longest file")
    min_pause_seconds: float = Field(default=0.3, ge=0.05, description="shortest silence between utterances")
    max_pause_seconds: float = Field(default=2.0, ge=0.05, description="longest silence between utterances")
    # Speech is normalised to about -20 dBFS RMS, so a floor at -65..-45 dBFS gives LibriLight-like SNRs of
    # roughly 25-45 dB while staying far above 16-bit quantisation noise (about -101 dBFS).
    min_noise_dbfs: float = Field(default=-65.0, le=-20.0, description="quietest per-file noise floor (RMS)")
    max_noise_dbfs: float = Field(default=-45.0, le=-20.0, description="loudest per-file noise floor (RMS)")
    backend: Backend = Field(
        default="auto", description="espeak (espeak-ng CLI), synthetic (built-in), or auto: espeak when installed"
    )

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> SampleCorpusConfig:
        for low, high in (
            ("min_file_seconds", "max_file_seconds"),
            ("min_pause_seconds", "max_pause_seconds"),
            ("min_noise_dbfs", "max_noise_dbfs"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low}={getattr(self, low)} is above {high}={getattr(self, high)}; swap them or widen the range"
                )
        if "/" in self.split or self.split in {".", ".."}:
            raise ValueError(f"split={self.split!r} must be a plain folder name such as 'small'")
        return self

    @property
    def total_seconds(self) -> float:
        return self.minutes * 60.0
