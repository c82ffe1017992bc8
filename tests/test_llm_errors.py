"""A model server that echoes the request's credentials in its error body: the key never reaches
drafts.error nor the terminal."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import GUIDELINES, rows, write_jsonl
from typer.testing import CliRunner

from labelagent.cli import app

CONFIGURED_KEY = "plain-configured-key-7f3a9c2e"  # not key-shaped: found by its value
OTHER_KEYS = ("sk-ant-api03-Zq8xW2vB7nLk", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv")


class EchoingServer(BaseHTTPRequestHandler):
    """Answers every request with `status` and a body that repeats its Authorization header."""

    status = 400

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        message = (
            f"Incorrect API key provided: you sent Authorization: "
            f"{self.headers.get('Authorization')}; keys on file: {', '.join(OTHER_KEYS)}"
        )
        body = json.dumps({"error": {"message": message, "code": self.status}})
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing(monkeypatch) -> Iterator[type[EchoingServer]]:
    monkeypatch.setenv("OPENAI_API_KEY", CONFIGURED_KEY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    EchoingServer.url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield EchoingServer
    finally:
        server.shutdown()
        server.server_close()


def label(tmp_path, url: str):
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "a", "text": "fine"}])
    args = [
        "label", items, "-g", GUIDELINES / "sentiment.md", "--db", tmp_path / "log.duckdb",
        "--model", "openai/echo", "--api-base", url, "--mode", "json", "--samples", "1",
    ]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_no_key(text: str) -> None:
    for key in (CONFIGURED_KEY, *OTHER_KEYS):
        assert key not in text
        assert key[:12] not in text


def test_a_refused_request_stores_its_error_without_the_keys(tmp_path, echoing):
    echoing.status = 400
    result = label(tmp_path, echoing.url)
    assert result.exit_code == 0, result.output
    [(error,)] = rows(tmp_path / "log.duckdb", "SELECT error FROM drafts")
    assert error.startswith("HTTP 400"), error
    assert "Authorization: Bearer [redacted]" in error
    assert_no_key(error)
    assert_no_key(result.output)


def test_a_rejected_key_is_reported_on_the_terminal_without_it(tmp_path, echoing):
    echoing.status = 401
    result = label(tmp_path, echoing.url)
    assert result.exit_code == 1, result.output
    assert "AuthenticationError" in result.output
    assert "[redacted]" in result.output
    assert_no_key(result.output)
