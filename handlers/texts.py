"""The reply texts of the handlers (``texts.yaml`` beside this file)."""

from __future__ import annotations

from pathlib import Path

from bot.texts import Texts

TEXTS_FILE = Path(__file__).parent / "texts.yaml"


def load_texts(path: Path = TEXTS_FILE) -> Texts:
    return Texts.load(path)


__all__ = ["TEXTS_FILE", "Texts", "load_texts"]
