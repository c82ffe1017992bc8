"""Running the simulated annotator: in a background thread for tests, or from the command line."""

import argparse
import asyncio
import contextlib
import ipaddress
import threading
from collections import Counter
from types import TracebackType

from aiohttp import web

from labelagent.simserver.app import SimState, make_app
from labelagent.simserver.config import FAULT_KINDS, SimConfig, load_gold

_SHUTDOWN_SECONDS = 0.25


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the simulated annotator binds loopback addresses only, not {host!r}")


async def _start(state: SimState, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; hanging ("timeout") handlers are cancelled when their client leaves."""
    _check_loopback(host)
    runner = web.AppRunner(
        make_app(state),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_SECONDS,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return runner, runner.addresses[0][1]


class SimServer:
    """The simulated annotator on 127.0.0.1, run by its own event loop in a daemon thread.

    `enqueue` scripts the next answers, one per returned choice, ahead of the normal ones.
    """

    def __init__(self, config: SimConfig | None = None, port: int = 0) -> None:
        self.config = config or SimConfig()
        self.port = port
        self.url = ""
        self._state = SimState(self.config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def history(self) -> list[dict]:
        return self._state.history

    @property
    def counts(self) -> Counter[str]:
        return self._state.counts

    def enqueue(self, *answers: dict | str) -> None:
        """Dicts become the answer object (tool arguments or JSON content); strings are sent
        verbatim, so they may be invalid JSON."""
        self._state.answers.extend(answers)

    def fail_next(self, *kinds: str) -> None:
        """Make the next requests fail with these fault kinds, in order."""
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}")
        self._state.faults.scripted.extend(kinds)

    def start(self) -> "SimServer":
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        outcome: list[BaseException | int] = []
        thread = threading.Thread(
            target=self._run, args=(loop, ready, outcome), name="simserver", daemon=True
        )
        thread.start()
        ready.wait()
        if isinstance(outcome[0], BaseException):
            thread.join()
            raise outcome[0]
        self._loop, self._thread, self.port = loop, thread, outcome[0]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        outcome: list[BaseException | int],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            runner, port = loop.run_until_complete(_start(self._state, "127.0.0.1", self.port))
        except BaseException as error:
            outcome.append(error)
            ready.set()
            loop.close()
            return
        outcome.append(port)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop, self._thread = None, None

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def serve_forever(config: SimConfig, host: str = "127.0.0.1", port: int = 8765) -> None:
    runner, bound = await _start(SimState(config), host, port)
    print(f"simulated annotator on http://{host}:{bound}/v1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m labelagent.simserver",
        description="OpenAI-compatible simulated annotator for tests and benchmarks (loopback).",
    )
    parser.add_argument("--gold", help="JSONL file of gold rows")
    parser.add_argument("--id-field", default="id")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--accuracy", type=float, default=0.9)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="e.g. 429,500")
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--retry-after-ms", type=int, default=50)
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--no-n", action="store_true", help="always answer one choice")
    parser.add_argument("--no-history", action="store_true", help="do not keep request bodies")
    parser.add_argument(
        "--prompt-cache", action="store_true", help="report cached prompt tokens as OpenAI does"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute, then 429")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds a batch takes")
    parser.add_argument(
        "--batch-faults", default="", help="how batches end, in order: none,failed,expired"
    )
    parser.add_argument("--batch-fault-rate", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=8765)
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    gold = load_gold(args.gold, args.id_field, args.label_field) if args.gold else {}
    return SimConfig(
        accuracy=args.accuracy,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms,
        fault_rate=args.fault_rate,
        faults=tuple(kind.strip() for kind in args.faults.split(",") if kind.strip()),
        hang_seconds=args.hang_seconds,
        retry_after_ms=args.retry_after_ms,
        honour_n=not args.no_n,
        seed=args.seed,
        gold=gold,
        max_concurrent=args.max_concurrent,
        keep_history=not args.no_history,
        rpm=args.rpm,
        batch_delay_seconds=args.batch_delay,
        batch_faults=[kind.strip() for kind in args.batch_faults.split(",") if kind.strip()],
        batch_fault_rate=args.batch_fault_rate,
        prompt_cache=args.prompt_cache,
    )


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config, port=args.port))


if __name__ == "__main__":
    main()
