"""How much a reviewer holds at a time and for how long: `labelagent review --lease-minutes 10
--batch 5`. The values reach the app as script arguments after `--` and are kept in the
session state, so the queue, undo and the tests read them from one place."""

import argparse
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

HOLD = "hold"


@dataclass(frozen=True)
class Hold:
    lease_minutes: float = 10.0
    batch: int = 5

    def __post_init__(self) -> None:
        if self.lease_minutes <= 0 or self.batch < 1:
            raise ValueError("the lease must be positive and the batch at least 1")

    @property
    def lease(self) -> timedelta:
        return timedelta(minutes=self.lease_minutes)

    def arguments(self) -> list[str]:
        """The script arguments that give this hold to the app."""
        return ["--lease-minutes", f"{self.lease_minutes:g}", "--batch", str(self.batch)]


def parse(argv: list[str]) -> Hold:
    """`--lease-minutes` and `--batch` among the script's arguments, else the defaults."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--lease-minutes", type=float, default=Hold.lease_minutes)
    parser.add_argument("--batch", type=int, default=Hold.batch)
    known, _ = parser.parse_known_args(argv)
    return Hold(known.lease_minutes, known.batch)


def remember(state: MutableMapping[str, Any], argv: list[str]) -> None:
    state.setdefault(HOLD, parse(argv))


def current(state: Mapping[str, Any]) -> Hold:
    return state.get(HOLD) or Hold()
