"""`labelagent review --host ADDRESS`: the address reaches Streamlit, a bad one is refused before
anything starts, and an address other machines can reach gets a warning on stderr. Only loopback
addresses are ever listened on here."""

import time

import pytest
from test_review_browser import review_process
from test_review_config import free_port, listening_addresses
from typer.testing import CliRunner

from labelagent.cli import app
from labelagent.review_ui.hold import Hold
from labelagent.review_ui.launch import exposure_warning, streamlit_command
from labelagent.store.db import migrate

LOOPBACK = ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST", "review.localhost"]
REACHABLE = ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "fe80::1", "review.example.org"]
BAD = ["", "bad host", "http://review.example.org", "review.example.org:8501", "-x", "1.2.3.999"]


def review(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `labelagent review ARGS` (lines joined)."""
    result = CliRunner().invoke(app, ["review", *args])
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())


def test_the_address_reaches_streamlit_as_its_server_address(tmp_path):
    command = streamlit_command(tmp_path / "log.duckdb", 8501, Hold(), "10.1.2.3")
    assert command.count("--server.address") == 1
    assert command[command.index("--server.address") + 1] == "10.1.2.3"
    default = streamlit_command(tmp_path / "log.duckdb", 8501)
    assert default[default.index("--server.address") + 1] == "127.0.0.1"


@pytest.mark.parametrize("host", LOOPBACK)
def test_a_loopback_address_gets_no_warning(host):
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", REACHABLE)
def test_an_address_other_machines_reach_gets_a_warning(host):
    warning = exposure_warning(host)
    assert warning is not None
    for point in (host, "anyone who can reach", "reverse proxy", "TLS", "Secure", "http"):
        assert point in warning


def test_the_warning_goes_to_stderr_before_anything_starts(tmp_path):
    """The database is missing, so the command stops after the warning without starting."""
    code, stdout, stderr = review("--host", "0.0.0.0", "--db", str(tmp_path / "none.duckdb"))
    assert code == 1
    assert "--host 0.0.0.0" in stderr and "reverse proxy" in stderr
    assert "reverse proxy" not in stdout


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_the_command_does_not_warn_for_a_loopback_address(tmp_path, host):
    code, _, stderr = review("--host", host, "--db", str(tmp_path / "none.duckdb"))
    assert code == 1
    assert "no such database" in stderr
    assert "reverse proxy" not in stderr


@pytest.mark.parametrize("host", BAD)
def test_a_bad_address_is_refused_naming_the_option_before_anything_starts(tmp_path, host):
    db = tmp_path / "log.duckdb"
    code, _, stderr = review("--host", host, "--db", str(db))
    assert code == 1
    assert f"--host {host!r}" in stderr
    assert "IP address or a host name" in stderr
    assert not db.exists()


def test_labelagent_review_listens_on_the_address_given(tmp_path):
    """127.0.0.2 is loopback too (all of 127.0.0.0/8 is), so the app started through the CLI
    is seen listening there and only there, read from /proc without connecting to it."""
    db = tmp_path / "log.duckdb"
    migrate(db)
    port = free_port()
    with review_process(db, port, "--host", "127.0.0.2") as process:
        deadline = time.monotonic() + 60
        while not listening_addresses(port):
            assert process.poll() is None, "labelagent review stopped"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)
        assert listening_addresses(port) == {"0200007F"}, "only 127.0.0.2"
