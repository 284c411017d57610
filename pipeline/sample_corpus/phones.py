"""Phone timings of an espeak-ng utterance, from libespeak-ng's own phoneme events (issue 13: ABX item files).

The `espeak-ng` program prints no timings without an mbrola voice (`--pho`; mbrola is not in Debian main), but
the library it wraps reports every phoneme it plays as an `espeakEVENT_PHONEME` with its sample position when
initialised with `espeakINITIALIZE_PHONEME_EVENTS` (speak_lib.h, espeak-ng 1.51). Synthesis is deterministic, so
the library run with the program's voice, pitch and speed yields the same samples (`num_samples` lets the caller
check), and the events time that audio exactly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import subprocess
import sys
from dataclasses import dataclass

# speak_lib.h constants (espeak-ng 1.51).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of exit()ing the Python process
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAMETER_RATE, _PARAMETER_PITCH = 1, 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_BUFFER_MS = 500
_TIMEOUT_SECONDS = 60.0
# Mnemonics that are not sounds: pause markers, stress/length modifiers and the word/phrase boundaries.
_NOT_A_PHONE = {"_", "_:", "_!", "_^_", "||", "|", ""}


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    )


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class PhoneSpan:
    """One phone of an utterance: espeak-ng mnemonic (e.g. `aU`, `f`) and [start_s, end_s) in its audio."""

    phone: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Alignment:
    """The phones of one synthesis and the length of the audio they time (at `sample_rate`)."""

    phones: list[PhoneSpan]
    num_samples: int
    sample_rate: int


class _Library:
    """libespeak-ng loaded once per process (the library is a singleton) with phoneme events on."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise OSError("libespeak-ng not found; install it (apt-get install espeak-ng)")
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.samples = 0
        self.events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced: the C side holds the pointer
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        self.sample_rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, None, options))
        if self.sample_rate <= 0:
            raise OSError(f"espeak_Initialize failed ({self.sample_rate}); check the espeak-ng-data install")
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, _wav: object, num_samples: int, events: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        self.samples += num_samples
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                self.events.append((event.id.string.decode("ascii", errors="replace"), int(event.sample)))
            index += 1
        return 0  # 0: continue synthesis

    def align(self, text: str, voice: str, pitch: int, speed: int) -> Alignment:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}; list them with `espeak-ng --voices=en`")
        self.lib.espeak_SetParameter(_PARAMETER_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(_PARAMETER_RATE, speed, 0)
        self.samples, self.events = 0, []
        data = text.encode() + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} on {text!r}")
        return Alignment(_spans(self.events, self.samples, self.sample_rate), self.samples, self.sample_rate)


def _spans(events: list[tuple[str, int]], total: int, rate: int) -> list[PhoneSpan]:
    """Phone events (mnemonic, start sample) -> spans; each ends where the next event starts (pauses dropped)."""
    bounds = [*(sample for _, sample in events[1:]), total]
    return [
        PhoneSpan(name.strip(), start / rate, end / rate)
        for (name, start), end in zip(events, bounds, strict=True)
        if name.strip() not in _NOT_A_PHONE and end > start
    ]


def align_here(text: str, voice: str, pitch: int, speed: int) -> Alignment:
    """`align` in this process (the library is loaded once and keeps its state; see `align`)."""
    return _library().align(text, voice, pitch, speed)


@functools.lru_cache(maxsize=1)
def _library() -> _Library:
    return _Library()


def align(text: str, voice: str, pitch: int, speed: int) -> Alignment:
    """Phones of `text` as espeak-ng says it with `-v voice -p pitch -s speed`, timed at its native rate.

    Runs in a fresh child process (this file as a script): within one process the library's
    generator carries state from one utterance to the next (timings drift by a few samples, and terminating and
    re-initialising it hangs in espeak-ng 1.51), whereas the `espeak-ng` program starts clean for each utterance.
    Raises OSError when libespeak-ng is missing or the child fails.
    """
    # Run as a script, not `-m`: the package __init__ would import numpy and more for nothing.
    command = [sys.executable, "-I", __file__, json.dumps([text, voice, pitch, speed])]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise OSError(f"phone alignment of {text!r} timed out after {_TIMEOUT_SECONDS} s") from error
    if done.returncode != 0:
        raise OSError(f"phone alignment of {text!r} failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    payload = json.loads(done.stdout)
    spans = [PhoneSpan(name, start, end) for name, start, end in payload["phones"]]
    return Alignment(spans, int(payload["num_samples"]), int(payload["sample_rate"]))


if __name__ == "__main__":
    result = align_here(*json.loads(sys.argv[1]))
    phones = [[p.phone, p.start_s, p.end_s] for p in result.phones]
    print(json.dumps({"phones": phones, "num_samples": result.num_samples, "sample_rate": result.sample_rate}))
