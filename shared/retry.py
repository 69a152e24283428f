"""The one retry policy: exponential backoff within a time budget, retrying only what the
caller calls transient (tenacity). Used for publishing to the broker, uploading to
storage and delivering notifications."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay, \
    wait_exponential
from tenacity.stop import stop_base


def backoff(*, first: float, maximum: float, within: float | None = None, attempts: int | None = None,
            transient: Callable[[BaseException], bool] = lambda exc: True, log: logging.Logger | None = None,
            what: str = "", sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """Retry a transient failure after first, 2×first, … up to `maximum` seconds apart, while
    the next try would start within `within` seconds and/or for at most `attempts` tries;
    the last failure, or the first permanent one, is raised as it is."""
    stop: stop_base = stop_before_delay(within) if within is not None else stop_after_attempt(attempts or 1)
    if within is not None and attempts is not None:
        stop = stop | stop_after_attempt(attempts)

    def before_sleep(state: RetryCallState) -> None:
        if log is not None and state.outcome is not None and state.next_action is not None:
            reason = str(state.outcome.exception()).splitlines()[0] if state.outcome.exception() else "failed"
            log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, state.attempt_number,
                        state.next_action.sleep, reason)

    return Retrying(retry=retry_if_exception(transient), stop=stop, reraise=True, sleep=sleep,
                    wait=wait_exponential(multiplier=first, max=maximum), before_sleep=before_sleep)
