"""Where a turn's CPU goes: pyinstrument over dialogue turns (the engine, on SQLite or a
PostgreSQL URL), printed as a call tree of the hot paths.

Run: ``.venv/bin/python bench/profile_turn.py [--messages 300] [--database-url URL] [--html FILE]``

The turns run one at a time after a warm-up, with the questions of ``bench/engine.py``; the tree
shows what each turn spends in the NLU, the knowledge search, the handlers and SQLAlchemy, which
is what to look at before changing code to make a turn cheaper (then measure with
``bench/engine.py`` and ``bench/webhook.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import TEXTS  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.messages import InboundMessage  # noqa: E402
from bot.runtime import Runtime  # noqa: E402


async def main() -> None:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval in seconds")
    args = parser.parse_args()
    environ = {"QIBOT_DATA_DIR": tempfile.mkdtemp(prefix="qibot-profile-"), "QIBOT_LOG_LEVEL": "WARNING"}
    if args.database_url:
        environ["QIBOT_DATABASE_URL"] = args.database_url
    runtime = await Runtime.start(load_settings(environ=environ))
    try:
        for i in range(30):  # warm-up: caches, prepared statements, the pool
            await runtime.dialogue.handle(InboundMessage("wechat", f"warm-{i}", TEXTS[i % 4], message_id=str(i)))
        profiler = Profiler(interval=args.interval, async_mode="enabled")
        profiler.start()
        for i in range(args.messages):
            await runtime.dialogue.handle(InboundMessage("wechat", f"user-{i}", TEXTS[i % 4], message_id=str(i)))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html is not None:
            args.html.write_text(profiler.output_html(), encoding="utf-8")
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
