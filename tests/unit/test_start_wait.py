"""The bounded start-up wait (streams/store/reachable.py): one line while waiting, success as soon as the
service answers, a one-line ServiceUnreachable with the advice once the time is up, no wait on an error
that waiting cannot fix (a refused password)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from streams.store.reachable import ServiceUnreachable, wait_for


def run(
    attempt: Callable[[], Awaitable[object]],
    timeout_s: float,
    notes: list[str],
    give_up_on: tuple[type[BaseException], ...] = (),
) -> None:
    asyncio.run(
        wait_for(
            "Thing",
            "host:1",
            attempt,
            retry_on=(ConnectionError,),
            give_up_on=give_up_on,
            timeout_s=timeout_s,
            note=notes.append,
            advice="start it",
        )
    )


def test_waits_until_the_service_answers_saying_so_once() -> None:
    calls: list[float] = []

    async def attempt() -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("refused")

    notes: list[str] = []
    run(attempt, 10.0, notes)
    assert len(calls) == 3
    assert notes == ["waiting for Thing at host:1 (up to 10 s, SEGSTREAM_CONNECT_TIMEOUT_S)"]


def test_gives_up_after_the_timeout_with_the_advice_and_the_last_error() -> None:
    async def attempt() -> None:
        raise ConnectionError("refused")

    notes: list[str] = []
    started = time.monotonic()
    with pytest.raises(ServiceUnreachable) as caught:
        run(attempt, 0.6, notes)
    assert 0.6 <= time.monotonic() - started < 6.0  # a loaded box adds delay, never removes the wait
    assert str(caught.value) == (
        "Thing at host:1 did not answer within 0.6 s: start it; to wait longer set"
        " SEGSTREAM_CONNECT_TIMEOUT_S (last error: refused)"
    )
    assert caught.value.exit_code == 4 and len(notes) == 1


def test_zero_means_one_attempt_and_no_waiting_line() -> None:
    async def attempt() -> None:
        raise ConnectionError("refused")

    notes: list[str] = []
    with pytest.raises(ServiceUnreachable):
        run(attempt, 0.0, notes)
    assert notes == []


def test_a_hanging_attempt_counts_as_a_failure() -> None:
    async def attempt() -> None:
        await asyncio.sleep(30)

    with pytest.raises(ServiceUnreachable, match="TimeoutError"):
        run(attempt, 0.2, [])


def test_an_error_waiting_cannot_fix_is_raised_at_once() -> None:
    class Refused(ConnectionError):
        pass

    async def attempt() -> None:
        raise Refused("wrong password")

    notes: list[str] = []
    with pytest.raises(Refused):
        run(attempt, 10.0, notes, give_up_on=(Refused,))
    assert notes == []
