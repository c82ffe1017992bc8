"""A real PostgreSQL server for the tests: initdb and pg_ctl in a temporary directory, on a free
loopback port, as a user who is not root (the server refuses to run as root).

`postgres_url` gives each test a fresh, empty database on the one server of the session. Without
a server binary the tests that need it are skipped, except in CI (the CI variable set), where that
is a failure: CI installs the Debian package `postgresql` (.ci/run).
"""

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from labelagent.store.address import PostgresUrl
from labelagent.store.postgres import close

NO_SERVER = (
    "no PostgreSQL server binary (initdb): install the Debian package `postgresql`, "
    "or put PostgreSQL's bin folder on PATH"
)
_database_numbers = itertools.count(1)


def server_bin() -> Path | None:
    """The folder of the newest PostgreSQL server binaries: Debian's layout, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _major_version(initdb: str) -> int:
    return int(Path(initdb).parent.parent.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> list[str]:
    """Run the server as `postgres` (or `nobody`) when we are root; as ourselves otherwise."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.fail("running as root, and neither the postgres nor the nobody user exists")


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running server for the whole session; yields the URL of its `postgres` database."""
    binaries = server_bin()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and there is {NO_SERVER}")
        pytest.skip(NO_SERVER)
    home = Path(tempfile.mkdtemp(prefix="labelagent-pg-"))
    runner = _as_server_user()
    if runner:
        shutil.chown(home, user=runner[2])
    data, port = home / "data", _free_port()
    initdb = ["-D", str(data), "-U", "labelagent", "--auth=trust", "--locale=C", "--no-sync"]
    _run([*runner, str(binaries / "initdb"), *initdb, "--encoding=UTF8"])
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*runner, str(binaries / "pg_ctl"), "-D", str(data)]
    _run([*pg_ctl, "-o", options, "-l", str(home / "server.log"), "-w", "start"])
    try:
        yield f"postgresql://labelagent@127.0.0.1:{port}/postgres"
    finally:
        _run([*pg_ctl, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new empty database on the session's server, for one test; dropped after it, with the
    connections this process kept to it."""
    name = f"test_{next(_database_numbers)}"
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    close(PostgresUrl(url))
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["duckdb", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """An empty log on each backend in turn (a DuckDB file, then a PostgreSQL database), so a
    store-level test written once runs on both."""
    if request.param == "duckdb":
        return tmp_path / "log.duckdb"
    return request.getfixturevalue("postgres_url")
