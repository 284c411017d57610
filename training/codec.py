"""The tokenizer as one object: waveform ⇄ uint16 tokens (spec §9).

`Codec` holds the online encoder, the FSQ quantiser, the mixed-radix packer and the generator, and owns the
token contract (STYLE rule 6): `sample_rate`, `frame_rate` (2.5), `tokens_per_frame` (19) and `vocab_size`
(16 384) are read from it, never re-declared elsewhere.

Encoding path (spec §9): downmix → resample to the model rate → zero-pad to whole frames → split into
near-equal hop-aligned chunks of at most `max_chunk_frames` frames (36 = 14.4 s, inside the 15 s training crop)
→ encoder in eval mode, fp32 (spec §11.15) → FSQ indices → packed tokens. The encoder's receptive field is the
whole chunk (attention, DAAM and GroupNorm statistics), so only equal-length chunks are batched together: zero
padding would change the tokens (spec §9, §11.21). Every forward follows the canonical encoding policy
(`training.encoding_policy`: fixed batch shape, fixed threads, deterministic GPU kernels), so a chunk's tokens
do not depend on which other chunks share its forward. Decoding mirrors encoding chunk by chunk.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

from training.configs import CodecConfig
from training.encoding_policy import (
    EncodingPolicy,
    EncodingSettings,
    canonical_numerics,
    fixed_shape_groups,
    split_frames,
)
from training.models.encoder import Encoder
from training.models.fsq import FSQ
from training.models.hifigan import Generator
from training.models.packing import MixedRadixPacker

FORMAT_NAME = "speechtok-codec"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.yaml"
META_FILE = "codec.json"
ARTIFACT_KEY = "codec"  # the MLflow artifact a registered codec's saved directory is logged under
# Equal-length chunks per *decoder* forward, to bound memory on long files: one 14.4 s chunk of the paper
# generator holds several 64 × 345 600 fp32 maps (≈ 88 MB each) in its last MRF. (The encoder's batch shape is
# part of the encoding policy.)
DEFAULT_MAX_BATCH_CHUNKS = 4

AudioArray = torch.Tensor | np.ndarray


@dataclass
class EncodeResult:
    """Tokens of one clip. `tokens` [T, tokens_per_frame] uint16 (numpy); `num_samples` and `sample_rate`
    describe the caller's audio, so `decode(tokens, num_samples, sample_rate)` gives back its length and rate."""

    tokens: np.ndarray
    num_samples: int
    sample_rate: int


@dataclass
class BatchEncodeResult:
    """Tokens of a batch: `tokens` [B, T_max, tokens_per_frame] uint16, zero past `num_frames[b]`;
    `num_frames` [B] and `num_samples` [B] (at `sample_rate`, the caller's rate) as int64 numpy arrays."""

    tokens: np.ndarray
    num_frames: np.ndarray
    num_samples: np.ndarray
    sample_rate: int


def group_by_length(lengths: Sequence[int], max_batch: int) -> list[list[int]]:
    """Positions of equal lengths in batches of at most `max_batch` (first-seen order).

    Only equal lengths may share a batch: zero padding would reach the model's global statistics (spec §11.21).
    """
    groups: dict[int, list[int]] = {}
    for position, length in enumerate(lengths):
        groups.setdefault(length, []).append(position)
    return [group[i : i + max_batch] for group in groups.values() for i in range(0, len(group), max_batch)]


@contextlib.contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Temporarily put modules in eval mode: no dropout when tokenising (spec §11.15)."""
    previous = [m.training for m in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in zip(modules, previous, strict=True):
            module.train(mode)


def _as_mono(wav: AudioArray, name: str = "wav") -> torch.Tensor:
    """Downmix to mono float32: [L] or [C, L] -> [L] (spec §1: average the channels)."""
    tensor = torch.as_tensor(wav)
    if tensor.dtype.is_complex or not (tensor.dtype.is_floating_point or tensor.dtype == torch.int16):
        raise ValueError(f"{name} has dtype {tensor.dtype}; pass float audio in [-1, 1] (or int16 PCM)")
    if tensor.dtype == torch.int16:
        tensor = tensor.float() / 32768.0
    if tensor.ndim == 2:
        tensor = tensor.float().mean(dim=0)
    elif tensor.ndim != 1:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}; pass [samples] or [channels, samples]")
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty; a clip needs at least one sample")
    return tensor.float()


def _int64_tokens(tokens: AudioArray, name: str) -> torch.Tensor:
    """Any integer array (uint16 from `encode` included) -> int64 tensor; floats and bools are refused."""
    if isinstance(tokens, np.ndarray):
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"{name} has dtype {tokens.dtype}; tokens must be integers (uint16 from encode)")
        return torch.from_numpy(tokens.astype(np.int64))
    tensor = torch.as_tensor(tokens)
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ValueError(f"{name} has dtype {tensor.dtype}; tokens must be integers (uint16 from encode)")
    return tensor.to(torch.int64)


class Codec(nn.Module):
    """Encoder → FSQ → packer (tokenize) and unpack → grid values → generator (detokenize)."""

    def __init__(
        self,
        config: CodecConfig,
        encoder: Encoder,
        fsq: FSQ,
        packer: MixedRadixPacker,
        generator: Generator,
        encoding: EncodingSettings | None = None,
        max_batch_chunks: int = DEFAULT_MAX_BATCH_CHUNKS,
    ) -> None:
        super().__init__()
        if max_batch_chunks < 1:
            raise ValueError(f"max_batch_chunks={max_batch_chunks} must be >= 1 (default 4 chunks per decoder pass)")
        self.max_batch_chunks = max_batch_chunks
        self.encoding = encoding or EncodingSettings()
        self.config = config
        self.encoder = encoder
        self.fsq = fsq
        self.packer = packer
        self.generator = generator

    @classmethod
    def from_config(
        cls,
        config: CodecConfig,
        encoding: EncodingSettings | None = None,
        max_batch_chunks: int = DEFAULT_MAX_BATCH_CHUNKS,
    ) -> Codec:
        """Build a randomly initialised codec from a typed config (e.g. `training.configs.tiny()`).

        `encoding` decides the tokens' bits (chunking, batch shape, threads; saved with the codec);
        `max_batch_chunks` only bounds the decoder's memory.
        """
        return cls(
            config,
            encoder=Encoder(config.encoder),
            fsq=FSQ(config.fsq.levels),
            packer=MixedRadixPacker(config.fsq.levels, config.fsq.group_size),
            generator=Generator(config.decoder, config.encoder.code_dim, config.encoder.legacy_padding),
            encoding=encoding,
            max_batch_chunks=max_batch_chunks,
        )

    @property
    def max_chunk_frames(self) -> int:
        """Frames per chunk at most (36 = 14.4 s); longer clips are cut into near-equal chunks."""
        return self.encoding.max_chunk_frames

    @property
    def encoding_policy(self) -> EncodingPolicy:
        """The policy in force on the codec's current device (recorded with every token file)."""
        return EncodingPolicy.resolve(self.encoding, self.device)

    # --- token contract (STYLE rule 6) -------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Model sample rate in Hz (24 000 for the paper)."""
        return self.config.encoder.sample_rate

    @property
    def hop(self) -> int:
        """Waveform samples per frame at the model rate (9 600 at 24 kHz, 6 400 at 16 kHz)."""
        return self.encoder.hop

    @property
    def frame_rate(self) -> float:
        """Frames per second (2.5)."""
        return self.sample_rate / self.hop

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per frame, ⌈code_dim / group_size⌉ (19)."""
        return self.packer.num_groups

    @property
    def vocab_size(self) -> int:
        """Token vocabulary size (16 384); every token is < this."""
        return self.packer.vocab_size

    @property
    def tokens_per_second(self) -> float:
        """Nominal token rate, frame_rate × tokens_per_frame (47.5)."""
        return self.frame_rate * self.tokens_per_frame

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    # --- encoding ----------------------------------------------------------------------------------------
    def _to_model_rate(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """[L] at `sample_rate` -> [L'] at the model rate (torchaudio's default sinc resampler, spec §1)."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate={sample_rate}; pass the audio's rate in Hz, e.g. 16000")
        if sample_rate == self.sample_rate:
            return wav
        return AF.resample(wav, sample_rate, self.sample_rate)

    def _encode_chunks(self, chunks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Encode hop-aligned chunks under the canonical policy: list of [L_i] -> list of tokens [T_i, G] int64.

        Every forward holds exactly `batch_chunks` chunks of one length (groups filled with repeats), so the
        tokens of a chunk never depend on the other chunks of the call.
        """
        policy = self.encoding_policy
        results: list[torch.Tensor | None] = [None] * len(chunks)
        with canonical_numerics(policy):
            for positions in fixed_shape_groups([c.shape[-1] for c in chunks], policy.batch_chunks):
                batch = torch.stack([chunks[i] for i in positions]).unsqueeze(1).to(self.device)  # [N, 1, L]
                indices = self.fsq(self.encoder(batch.float())).indices  # [N, T, D]
                tokens = self.packer.pack(indices).cpu()  # [N, T, G]
                for row, i in enumerate(positions):
                    results[i] = tokens[row]
        return [r for r in results if r is not None]

    def _chunk_waveform(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """Zero-pad to whole frames and split: [L] -> chunks of at most max_chunk_frames·hop samples."""
        frames = -(-wav.shape[-1] // self.hop)  # ceil
        padded = torch.nn.functional.pad(wav, (0, frames * self.hop - wav.shape[-1]))
        sizes = [n * self.hop for n in split_frames(frames, self.max_chunk_frames)]
        return list(torch.split(padded, sizes))

    @torch.inference_mode()
    def encode_batch(
        self, wavs: AudioArray, lengths: Sequence[int] | AudioArray, sample_rate: int
    ) -> BatchEncodeResult:
        """Tokenize a right-padded batch; equal to encoding each clip alone (padding never reaches the model).

        wavs [B, L] (or [B, C, L]), lengths [B] -> BatchEncodeResult(tokens [B, T_max, G] uint16, ...).
        """
        batch = torch.as_tensor(wavs)
        lengths_list = [int(n) for n in torch.as_tensor(lengths).flatten().tolist()]
        if batch.ndim not in (2, 3) or batch.shape[0] != len(lengths_list):
            raise ValueError(
                f"wavs has shape {tuple(batch.shape)} and lengths {len(lengths_list)} entries; "
                "pass wavs [B, samples] (or [B, channels, samples]) with one length per row"
            )
        if any(n < 1 or n > batch.shape[-1] for n in lengths_list):
            raise ValueError(f"lengths {lengths_list} must lie in [1, {batch.shape[-1]}] (the padded length)")
        clips = [
            self._to_model_rate(_as_mono(batch[b, ..., :n], f"wavs[{b}]"), sample_rate)
            for b, n in enumerate(lengths_list)
        ]
        chunked = [self._chunk_waveform(clip) for clip in clips]
        with _eval_mode(self.encoder):
            flat = self._encode_chunks([c for chunks in chunked for c in chunks])
        per_clip, start = [], 0
        for chunks in chunked:
            per_clip.append(torch.cat(flat[start : start + len(chunks)]))  # [T_b, G]
            start += len(chunks)
        num_frames = [t.shape[0] for t in per_clip]
        tokens = torch.zeros(len(per_clip), max(num_frames), self.tokens_per_frame, dtype=torch.int64)
        for b, clip_tokens in enumerate(per_clip):
            tokens[b, : clip_tokens.shape[0]] = clip_tokens
        return BatchEncodeResult(
            tokens=self.packer.to_uint16(tokens).numpy(),
            num_frames=np.asarray(num_frames, dtype=np.int64),
            num_samples=np.asarray(lengths_list, dtype=np.int64),
            sample_rate=sample_rate,
        )

    def encode(self, wav: AudioArray, sample_rate: int) -> EncodeResult:
        """Tokenize one clip at any rate: wav [L] or [C, L] -> EncodeResult(tokens [⌈L'/hop⌉, G] uint16, ...).

        L' is the length after resampling to the model rate; `num_samples` is L, at the caller's rate.
        """
        mono = _as_mono(wav)
        result = self.encode_batch(mono.unsqueeze(0), [mono.shape[0]], sample_rate)
        return EncodeResult(tokens=result.tokens[0], num_samples=int(mono.shape[0]), sample_rate=sample_rate)

    # --- decoding ----------------------------------------------------------------------------------------
    def _tokens_to_tensor(self, tokens: AudioArray, name: str) -> torch.Tensor:
        """Validate shape and dtype: [T, G] any integer array -> [T, G] int64 tensor."""
        tensor = _int64_tokens(tokens, name)
        if tensor.ndim != 2 or tensor.shape[1] != self.tokens_per_frame:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}; expected [frames, {self.tokens_per_frame}] "
                f"({self.tokens_per_frame} tokens per frame for this model)"
            )
        # Out-of-range tokens are refused by MixedRadixPacker.unpack with the group and value named.
        return tensor

    def _decode_frames(self, chunks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Decode token chunks, batching equal lengths: list of [T_i, G] -> list of waveforms [T_i·hop]."""
        results: list[torch.Tensor | None] = [None] * len(chunks)
        for positions in group_by_length([c.shape[0] for c in chunks], self.max_batch_chunks):
            tokens = torch.stack([chunks[i] for i in positions]).to(self.device)  # [N, T, G]
            values = self.fsq.indices_to_values(self.packer.unpack(tokens))  # [N, D, T]
            audio = self.generator(values).squeeze(1).float().cpu()  # [N, 1, T·hop] -> [N, T·hop]
            for row, i in enumerate(positions):
                results[i] = audio[row]
        return [r for r in results if r is not None]

    def _finish(self, audio: torch.Tensor, num_samples: int | None, sample_rate: int | None) -> torch.Tensor:
        """Resample to the requested rate, then crop (or zero-pad) to `num_samples`: [L] -> [num_samples]."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            if sample_rate <= 0:
                raise ValueError(f"sample_rate={sample_rate}; pass the output rate in Hz, e.g. 16000")
            audio = AF.resample(audio, self.sample_rate, sample_rate)
        if num_samples is None:
            return audio
        if num_samples < 0:
            raise ValueError(f"num_samples={num_samples}; pass the clip length from EncodeResult.num_samples")
        return torch.nn.functional.pad(audio[:num_samples], (0, max(0, num_samples - audio.shape[0])))

    @torch.inference_mode()
    def decode_batch(
        self,
        tokens: AudioArray,
        num_frames: Sequence[int] | AudioArray,
        num_samples: Sequence[int] | AudioArray | None = None,
        sample_rate: int | None = None,
    ) -> list[torch.Tensor]:
        """Detokenize a padded batch; equal to decoding each item alone.

        tokens [B, T_max, G], num_frames [B], num_samples [B] -> list of B waveforms [num_samples[b]] at
        `sample_rate` (default: the model rate; `num_samples` counts samples at that output rate).
        """
        batch = _int64_tokens(tokens, "tokens")
        frames = [int(n) for n in torch.as_tensor(num_frames).flatten().tolist()]
        samples: list[int | None] = (
            [None] * len(frames) if num_samples is None else torch.as_tensor(num_samples).flatten().tolist()
        )
        if batch.ndim != 3 or batch.shape[0] != len(frames) or len(samples) != len(frames):
            raise ValueError(
                f"tokens has shape {tuple(batch.shape)} with {len(frames)} num_frames and {len(samples)} "
                "num_samples; pass tokens [B, frames, tokens_per_frame] and one count per item"
            )
        items = [self._tokens_to_tensor(batch[b, :n], f"tokens[{b}]") for b, n in enumerate(frames)]
        chunked = [list(torch.split(item, split_frames(item.shape[0], self.max_chunk_frames))) for item in items]
        with _eval_mode(self.generator):
            flat = self._decode_frames([c for chunks in chunked for c in chunks])
        outputs, start = [], 0
        for chunks, n in zip(chunked, samples, strict=True):
            audio = torch.cat(flat[start : start + len(chunks)])
            start += len(chunks)
            outputs.append(self._finish(audio, None if n is None else int(n), sample_rate))
        return outputs

    def decode(
        self, tokens: AudioArray, num_samples: int | None = None, sample_rate: int | None = None
    ) -> torch.Tensor:
        """Detokenize one clip: tokens [T, G] -> waveform [num_samples] (or [T·hop]) float32 in [-1, 1].

        Audio comes out at the model rate unless `sample_rate` is given (e.g. `EncodeResult.sample_rate`),
        in which case it is resampled first; `num_samples` counts samples at the output rate.
        """
        tensor = self._tokens_to_tensor(tokens, "tokens")
        samples = None if num_samples is None else [num_samples]
        return self.decode_batch(tensor.unsqueeze(0), [tensor.shape[0]], samples, sample_rate)[0]

    # --- persistence -------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write `weights.pt` (state dict), `config.yaml` and `codec.json` (format version) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in self.state_dict().items()}, directory / WEIGHTS_FILE)
        self.config.to_yaml(directory / CONFIG_FILE)
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.config.name,
            "sample_rate": self.sample_rate,
            "hop": self.hop,
            "frame_rate": self.frame_rate,
            "tokens_per_frame": self.tokens_per_frame,
            "vocab_size": self.vocab_size,
            "max_chunk_frames": self.max_chunk_frames,
            "encoding": asdict(self.encoding),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> Codec:
        """Rebuild a saved codec and load its weights strictly (every key must match, spec §11.19)."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found; is {directory} a directory written by Codec.save?")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_NAME or meta.get("format_version") not in SUPPORTED_FORMAT_VERSIONS:
            raise ValueError(
                f"{meta_path} has format {meta.get('format')!r} version {meta.get('format_version')!r}; this "
                f"speechtok reads {FORMAT_NAME!r} versions {list(SUPPORTED_FORMAT_VERSIONS)} (upgrade speechtok)"
            )
        config = CodecConfig.from_yaml(directory / CONFIG_FILE)
        # Codecs saved before the encoding policy existed carry only max_chunk_frames; the rest takes defaults.
        encoding = EncodingSettings.from_json(meta.get("encoding", {"max_chunk_frames": meta.get("max_chunk_frames")}))
        codec = cls.from_config(config, encoding=encoding)
        weights_path = directory / WEIGHTS_FILE
        state = torch.load(weights_path, map_location=map_location, weights_only=True)
        expected = set(codec.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{weights_path} does not match the model in {directory / CONFIG_FILE}: missing keys "
                f"{missing[:5]} ({len(missing)}), unexpected keys {unexpected[:5]} ({len(unexpected)})"
            )
        codec.load_state_dict(state, strict=True)
        return codec.to(map_location).eval()
