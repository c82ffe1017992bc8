"""The review app started by hand as review_ui/README.md says, from the repository, listens on
this machine only, sends no usage statistics and shows no Deploy button; `labelagent review`
passes the same settings."""

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from conftest import REPO

from labelagent.review_ui.launch import streamlit_command

SAFE = {
    "server.address": "127.0.0.1",
    "browser.gatherUsageStats": False,
    "client.toolbarMode": "minimal",
}


def clean_env(home: Path) -> dict[str, str]:
    """No user-wide ~/.streamlit/config.toml and no STREAMLIT_* variables: the repository's
    own file alone decides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    return env | {"HOME": str(home)}


def shown_config(home: Path) -> dict[str, object]:
    """The options `streamlit config show` prints as set, run where the README starts the app
    (its output is TOML-like but wraps comments, so it is read line by line)."""
    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"],
        cwd=REPO,
        env=clean_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    options, section = {}, ""
    for line in map(str.strip, shown.splitlines()):
        if header := re.fullmatch(r"\[(\w+)\]", line):
            section = header.group(1)
        elif setting := re.fullmatch(r"(\w+) = (.+)", line):
            options[f"{section}.{setting.group(1)}"] = tomllib.loads(f"v = {setting.group(2)}")["v"]
    return options


def test_streamlit_reads_the_safe_settings_from_the_repository(tmp_path):
    config = shown_config(tmp_path)
    assert {name: config.get(name) for name in SAFE} == SAFE


def test_labelagent_review_passes_the_same_settings(tmp_path):
    command = streamlit_command(tmp_path / "log.duckdb", 8501)
    flags = {name: command[command.index(f"--{name}") + 1] for name in SAFE}
    assert flags == {name: str(value).lower() for name, value in SAFE.items()}


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_app_started_by_hand_listens_on_this_machine_only(tmp_path):
    port = free_port()
    app = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "review_ui/app.py",
            "--server.port", str(port), "--server.headless", "true",
            "--", "--db", str(tmp_path / "log.duckdb"),
        ],
        cwd=REPO, env=clean_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.2)
        assert listening_addresses(port) == {"0100007F"}, "only 127.0.0.1"
    finally:
        app.terminate()
        app.wait(timeout=30)
