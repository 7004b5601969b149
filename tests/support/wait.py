"""The one way tests wait for a condition: poll it until true, or fail saying what was waited for.

The step is the polling period of the check, never a guess at how long something takes to get ready.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, overload

T = TypeVar("T")


def describe(check: Callable[[], object]) -> str:
    """The check's source line (a lambda) or its name, for the failure message."""
    name: str = getattr(check, "__name__", repr(check))
    if name != "<lambda>":
        return name
    try:
        return inspect.getsource(check).strip()
    except (OSError, TypeError):
        return repr(check)


def _failure(what: str | None, check: Callable[[], object], timeout: float, last: object) -> AssertionError:
    return AssertionError(f"not true within {timeout:g} s: {what or describe(check)} (last value: {last!r})")


@overload
async def eventually(
    check: Callable[[], Coroutine[Any, Any, T | None]],
    timeout: float = ...,
    step: float = ...,
    what: str | None = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], timeout: float = ..., step: float = ..., what: str | None = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any], timeout: float = 10.0, step: float = 0.05, what: str | None = None
) -> Any:
    """Await ``check()`` (sync or async) until its value is truthy and return that value.

    ``what`` names the condition in the failure message (default: the check's source line or name).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise _failure(what, check, timeout, value)
        await asyncio.sleep(step)


def eventually_sync(
    check: Callable[[], T | None], timeout: float = 10.0, step: float = 0.05, what: str | None = None
) -> T:
    """``eventually`` for synchronous tests (no event loop): blocks the calling thread while polling."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _failure(what, check, timeout, value)
        time.sleep(step)
