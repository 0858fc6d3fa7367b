"""The custom menu: its definition for the menu API and the text each click stands for, both
read from ``menu.yaml`` so the two never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from intents import yamlfile

MENU_FILE = Path(__file__).parent / "menu.yaml"


@dataclass(frozen=True, slots=True)
class Menu:
    definition: dict[str, Any]  # the body of POST /cgi-bin/menu/create
    texts: dict[str, str]  # click key (and button name) → text the user would have typed

    def click_text(self, key: str) -> str | None:
        return self.texts.get(key)


def load_menu(path: Path = MENU_FILE) -> Menu:
    data = yamlfile.read(path)
    buttons = data.get("button") if isinstance(data, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ValueError(f"{path}: 'button' must list 1-3 top-level buttons")
    texts: dict[str, str] = {}

    def button(raw: Any, top: bool) -> dict[str, Any]:
        if not isinstance(raw, dict) or not raw.get("name"):
            raise ValueError(f"{path}: every button needs a name: {raw!r}")
        subs = raw.get("sub_button")
        if subs is not None:
            if not top or not isinstance(subs, list) or not 1 <= len(subs) <= 5:
                raise ValueError(f"{path}: {raw['name']}: 1-5 sub-buttons, on top-level buttons only")
            return {"name": raw["name"], "sub_button": [button(sub, False) for sub in subs]}
        out = {k: v for k, v in raw.items() if k not in ("text", "aliases")}
        if raw.get("type") == "click":
            key = str(raw.get("key", ""))
            if not key or len(key.encode()) > 128 or not raw.get("text"):
                raise ValueError(f"{path}: {raw['name']}: a click button needs a key (≤128 bytes) and a text")
            if key in texts:
                raise ValueError(f"{path}: duplicate key {key}")
            texts[key] = str(raw["text"])
            for alias in (raw["name"], *raw.get("aliases", ())):  # menus made by hand in the console
                texts.setdefault(str(alias), str(raw["text"]))
        return out

    definition = {"button": [button(raw, True) for raw in buttons]}
    return Menu(definition, texts)


@cache
def default_menu() -> Menu:
    return load_menu()
