"""Typed configuration of the LLM export (issue 14): layout, document unit, order, special ids, shard size."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

# Token files are little-endian uint16 (Megatron dtype code 8): every id, specials included, must fit in 16 bits.
MAX_TOKEN_ID = (1 << 16) - 1


class ExportFormat(StrEnum):
    megatron = "megatron"  # {prefix}.bin + {prefix}.idx, Megatron-LM's indexed dataset (MMIDIDX version 1)
    flat = "flat"  # nanoGPT-style raw {prefix}.bin + {prefix}.docs.npy (document start offsets)


class DocumentUnit(StrEnum):
    book = "book"  # one document per (speaker, book): continuous speech for long-context training
    utterance = "utterance"  # one document per token-table row


class ExportOrder(StrEnum):
    book = "book"  # (speaker, book_id) ascending; inside a book (source_path, segment_index): source order


class SpecialIds(BaseModel):
    """Special ids placed around the codec's tokens; None leaves that marker out.

    Each is one token: `bos` before a document, `sep` between two utterances of a document, `eos` after it.
    They are never placed inside an utterance, so a document's frames (tokens_per_frame tokens each) are whole.
    """

    bos: int | None = 16384
    eos: int | None = 16385
    sep: int | None = 16386

    def used(self) -> dict[str, int]:
        return {name: value for name, value in self.model_dump().items() if value is not None}

    def check(self, vocab_size: int) -> None:
        """Refuse ids that collide with the codec's vocabulary, each other, or the uint16 range."""
        used = self.used()
        for name, value in used.items():
            if not vocab_size <= value <= MAX_TOKEN_ID:
                raise ValueError(
                    f"--{name} {value} is out of range: special ids must be >= the vocabulary size {vocab_size} "
                    f"(read from the token table's _manifest.json) and <= {MAX_TOKEN_ID} (uint16 files)"
                )
        if len(set(used.values())) != len(used):
            raise ValueError(f"special ids must differ: {used}")


class ExportConfig(BaseModel):
    """How token tables become LLM token files."""

    format: ExportFormat = ExportFormat.megatron
    document: DocumentUnit = DocumentUnit.book
    order: ExportOrder = ExportOrder.book
    specials: SpecialIds = Field(default_factory=SpecialIds)
    shard_tokens: int = Field(
        default=1 << 28,
        ge=1,
        description="tokens per output file pair (2 bytes each: 512 MiB .bin); a shard holds the documents that "
        "start in its range, so it ends on a document boundary and may exceed this by one document",
    )
    cache_row_groups: int = Field(
        default=16,
        ge=1,
        description="decoded source row groups held at once while writing a shard (bounds memory; more avoids "
        "re-reading when books are scattered over many files)",
    )
    index_row_group_size: int = Field(default=65536, ge=1, description="rows per row group of index.parquet")
    experiment: str = Field(default="export", description="MLflow experiment of the export runs")

    @model_validator(mode="after")
    def _book_documents_need_book_order(self) -> ExportConfig:
        if self.document is DocumentUnit.book and self.order is not ExportOrder.book:
            raise ValueError("--document book needs --order book (a book's utterances must be adjacent)")
        return self

    def layout_fingerprint(self) -> dict[str, object]:
        """The settings that change the bytes of a token file (part of each shard's plan fingerprint)."""
        return {
            "format": self.format.value,
            "document": self.document.value,
            "order": self.order.value,
            "specials": self.specials.model_dump(),
            "shard_tokens": self.shard_tokens,
        }
