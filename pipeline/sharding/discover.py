"""Find a LibriLight-shaped corpus's audio files: `{split}/{speaker}/{book}/{name}.flac` (+ `{name}.json`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.sharding.records import Reason, Rejection, SourceFile, Stage
from storage.fs import Location

# LibriLight ships FLAC; WAV is accepted too so float recordings (which FLAC cannot hold) can be sharded.
AUDIO_EXTENSIONS = (".flac", ".wav")
_LAYOUT_DEPTH = 4  # split / speaker / book / file


@dataclass(frozen=True)
class Discovery:
    """Every audio path found under the root: usable files, plus those rejected for their place."""

    files: list[SourceFile]
    rejections: list[Rejection]

    @property
    def total(self) -> int:
        return len(self.files) + len(self.rejections)


def discover(location: Location, splits: list[str] | None = None) -> Discovery:
    """List audio files (sorted, so every later step is deterministic).

    Anything with an audio extension counts as discovered: a file outside the 4-level layout or an entry
    that is not a regular file is rejected here rather than silently ignored.
    """
    entries = location.fs.find(location.root, withdirs=True, detail=True)
    files: list[SourceFile] = []
    rejections: list[Rejection] = []
    for path in sorted(entries):
        if not path.lower().endswith(AUDIO_EXTENSIONS):
            continue
        relative = location.relative(path)
        parts = relative.split("/")
        if splits is not None and parts[0] not in splits:
            continue
        info = entries[path]
        if info.get("type") != "file":
            rejections.append(
                Rejection(
                    relative, Stage.DISCOVER, Reason.UNREADABLE, f"{relative} is a {info.get('type')}, not a file"
                )
            )
            continue
        if len(parts) != _LAYOUT_DEPTH:
            rejections.append(
                Rejection(
                    relative,
                    Stage.DISCOVER,
                    Reason.BAD_LAYOUT,
                    f"{relative} is not at {{split}}/{{speaker}}/{{book}}/{{name}}.flac",
                )
            )
            continue
        split, speaker, book, filename = parts
        files.append(
            SourceFile(
                split=split,
                speaker=speaker,
                book=book,
                name=filename.rsplit(".", 1)[0],
                audio=relative,
                size_bytes=int(info.get("size") or 0),
            )
        )
    return Discovery(files=files, rejections=rejections)
