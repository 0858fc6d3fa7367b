"""Issue 14, the staff command line: Chinese domain and status names, the same two ways to give
the text of ``resolve`` and ``reopen``, exports into the data directory, and a closed pipe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import archive, cases
from bot.storage.db import transaction
from bot.storage.models import Enterprise
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock

QIBOT = Path(sys.executable).with_name("qibot")


async def new_case(runtime: Runtime, clock: Clock, domain: str) -> str:
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name="厦门示例有限公司", district="思明区")
        session.add(enterprise)
        await session.flush()
        case = await cases.open_case(session, enterprise=enterprise, identity=None, domain=domain,
                                     description="测试需求", mode="online", district="思明区", now=clock())
        return case.number


async def cli(settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              *args: str, code: int = 0) -> tuple[str, str]:
    monkeypatch.setenv("QIBOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.chdir(settings.data_dir.parent)
    capsys.readouterr()
    try:
        result = await asyncio.to_thread(main, list(args))
    except SystemExit as exc:  # argparse, and a missing or doubled text
        result = exc.code if isinstance(exc.code, int) else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    captured = capsys.readouterr()
    assert result == code, captured
    return captured.out, captured.err


async def test_the_ledger_takes_chinese_domain_and_status_names(
    flow_runtime: Runtime, settings: Settings, clock: Clock,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrology = await new_case(flow_runtime, clock, "metrology")
    patent = await new_case(flow_runtime, clock, "ip")
    out, _ = await cli(settings, capsys, monkeypatch, "case", "list", "--domain", "计量", "--status", "待受理")
    assert metrology in out and patent not in out
    assert "计量" in out and "待受理" in out and "metrology" not in out and "new" not in out
    codes, _ = await cli(settings, capsys, monkeypatch, "case", "list", "--domain", "metrology", "--status", "new")
    assert codes == out  # the codes still work
    out, _ = await cli(settings, capsys, monkeypatch, "case", "list", "--domain", "知识产权")
    assert patent in out and metrology not in out
    _, err = await cli(settings, capsys, monkeypatch, "case", "list", "--domain", "计", code=2)
    assert "计量" in err and "知识产权" in err  # the choices, in Chinese
    _, err = await cli(settings, capsys, monkeypatch, "case", "list", "--status", "done", code=2)
    assert "待受理" in err


async def test_resolve_and_reopen_take_their_text_the_same_two_ways(
    flow_runtime: Runtime, settings: Settings, clock: Clock,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = await new_case(flow_runtime, clock, "metrology")
    await cli(settings, capsys, monkeypatch, "case", "accept", number, "--as", "wang")
    await cli(settings, capsys, monkeypatch, "case", "resolve", number, "--as", "wang", "已完成", "检定")
    await cli(settings, capsys, monkeypatch, "case", "reopen", number, "企业", "要求复核", "--as", "wang")
    await cli(settings, capsys, monkeypatch, "case", "resolve", number, "--summary", "复核完成", "--as", "wang")
    await cli(settings, capsys, monkeypatch, "case", "reopen", number, "--reason", "证书有误", "--as", "wang")
    _, err = await cli(settings, capsys, monkeypatch, "case", "reopen", number, "--as", "wang", code=1)
    assert "reason" in err and "Traceback" not in err
    _, err = await cli(settings, capsys, monkeypatch, "case", "resolve", number, "甲", "--summary", "乙", code=1)
    assert "summary" in err
    shown, _ = await cli(settings, capsys, monkeypatch, "case", "show", number)
    events = [line.split() for line in shown.splitlines() if line.startswith("    20")]  # date, time, event, actor…
    texts = [" ".join(fields[3:]).split("：", 1)[-1] for fields in events if fields[2] in ("办结", "重新打开")]
    assert texts == ["已完成 检定", "企业 要求复核", "复核完成", "证书有误"], shown


async def test_export_writes_into_the_data_directory_by_default(
    flow_runtime: Runtime, settings: Settings, clock: Clock, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = await new_case(flow_runtime, clock, "metrology")
    async with transaction(flow_runtime.sessions) as session:
        await archive.archive_case(session, await cases.require_case(session, number), clock())
    out, _ = await cli(settings, capsys, monkeypatch, "case", "export", number)
    written = settings.data_dir / "exports" / f"{number}.json"
    assert written.exists() and str(written) in out
    assert not (settings.data_dir.parent / f"{number}.json").exists()  # not the working directory
    elsewhere = tmp_path / "mine.json"
    await cli(settings, capsys, monkeypatch, "case", "export", number, "--out", str(elsewhere))
    assert elsewhere.exists()


def test_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    environ.update({"QIBOT_DATA_DIR": str(tmp_path / "data"), "QIBOT_EMBEDDINGS": "0"})
    command = [str(QIBOT)] if QIBOT.exists() else [sys.executable, "-m", "bot.cli"]
    # `qibot case list | head -0`: the reader is gone before anything is written.
    process = subprocess.Popen([*command, "case", "list"], env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


async def test_complaint_status_and_commissioner_domains_in_chinese(
    flow_runtime: Runtime, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    await Chat(flow_runtime, user="shop").say("我要投诉，专员答应的事一直没有办")
    out, _ = await cli(settings, capsys, monkeypatch, "complaint", "list", "--status", "处理中")
    assert "TS-2026-000001" in out and "处理中" in out
    out, _ = await cli(settings, capsys, monkeypatch, "complaint", "list", "--status", "已答复")
    assert "TS-2026-000001" not in out
    out, _ = await cli(settings, capsys, monkeypatch, "complaint", "list", "--status", "open")
    assert "TS-2026-000001" in out
    people, _ = await cli(settings, capsys, monkeypatch, "commissioner", "list")
    assert "计量" in people and "metrology" not in people
