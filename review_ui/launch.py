"""What `labelagent review` checks before it starts the Streamlit app."""

import sys
from pathlib import Path

from rich.console import Console

from agent.errors import ConfigError, DatabaseError
from agent.review.accounts import count_reviewers
from agent.review.queue import known_guideline, set_settings
from agent.store.db import migrate
from review_ui.hold import Hold

APP = Path(__file__).resolve().parent / "app.py"


def prepare(
    db: str | Path,
    guideline: str | None,
    overlap: int | None,
    blind_share: float | None,
    out: Console,
) -> None:
    if not Path(db).exists():
        raise DatabaseError(
            f"{db}: no such database", hint="Run `labelagent demo` or `labelagent label` first."
        )
    if (overlap is not None or blind_share is not None) and not guideline:
        raise ConfigError("--overlap and --blind-share need --guideline NAME")
    if guideline and not known_guideline(db, guideline):
        raise ConfigError(f"no guideline named {guideline!r} in {db}")
    migrate(db)
    if overlap is not None or blind_share is not None:
        set_settings(db, guideline, overlap or 1, 0.2 if blind_share is None else blind_share)
    if count_reviewers(db) == 0:
        out.print(
            f"[yellow]{db} has no reviewer accounts yet; nobody can sign in until you create "
            f"one:[/] labelagent reviewer add NAME --db {db}"
        )


def streamlit_command(db: str | Path, port: int, held: Hold | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--server.address",
        "127.0.0.1",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--db",
        str(Path(db).resolve()),
        *(held or Hold()).arguments(),
    ]
