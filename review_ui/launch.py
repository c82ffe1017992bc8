"""What `labelagent review` checks before it starts the Streamlit app."""

import ipaddress
import re
import sys
from pathlib import Path

from rich.console import Console

from labelagent.errors import ConfigError, DatabaseError
from labelagent.review.accounts import count_reviewers
from labelagent.review.queue import known_guideline, set_settings
from labelagent.review_ui.hold import Hold
from labelagent.store.db import migrate

APP = Path(__file__).resolve().parent / "app.py"
LOCAL_HOST = "127.0.0.1"
LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_host_name(host: str) -> bool:
    """RFC 1123 host name; a last label of digits only is a mistyped IPv4 address."""
    labels = host.removesuffix(".").split(".")
    return (
        len(host) <= 253
        and all(LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def check_host(host: str) -> None:
    """`--host` must be something Streamlit can listen on: no scheme, no port, no spaces."""
    if _ip(host) is None and not _is_host_name(host):
        raise ConfigError(
            f"--host {host!r}: not an IP address or a host name",
            hint="Give an address of this machine, e.g. --host 127.0.0.1 (the default) or "
            "--host 10.0.0.5; the port is --port.",
        )


def _is_loopback(host: str) -> bool:
    ip = _ip(host)
    if ip is None:
        name = host.removesuffix(".").lower()
        return name == "localhost" or name.endswith(".localhost")
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def exposure_warning(host: str) -> str | None:
    """What to tell whoever starts the app on an address other machines can reach."""
    if _is_loopback(host):
        return None
    return (
        f"--host {host}: the review app serves anyone who can reach that address. Put it "
        "behind a reverse proxy that terminates TLS (review_ui/README.md, 'Serving a team'; "
        "sign-in through your identity provider: 'Signing in with your identity provider' in "
        "the same file). Over plain http, passwords travel in clear text and the session "
        "cookie is sent without Secure."
    )


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


def streamlit_command(
    db: str | Path, port: int, held: Hold | None = None, host: str = LOCAL_HOST
) -> list[str]:
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
        host,
        "--",
        "--db",
        str(Path(db).resolve()),
        *(held or Hold()).arguments(),
    ]
