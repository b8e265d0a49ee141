"""``orch.outage.ride_out`` on a fake clock: what is tried again, for how long, how often."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orch.errors import LeaseLost, StoreError, StoreTooNew, StoreUnavailable
from orch.outage import STORE_PATIENCE, Patience, ride_out


class FakeTime:
    """A monotonic clock that moves only when slept on; records every pause."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception | None = None) -> Callable[[], str]:
    """A call that fails ``times`` times (unavailable, unless ``error``), then answers."""
    calls = [0]

    def call() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise error or StoreUnavailable(f"attempt store: gone ({calls[0]})")
        return f"answered after {calls[0]} calls"

    return call


def ride(call: Callable[[], str], fake: FakeTime, until: float | None = None) -> str:
    return ride_out(call, until=until, clock=fake.clock, sleep=fake.sleep, unit_random=lambda: 0.5)


def test_an_outage_shorter_than_the_limit_is_ridden_out_with_doubling_pauses() -> None:
    fake = FakeTime()
    assert ride(failing(8), fake) == "answered after 9 calls"
    # unit_random 0.5 is the middle of the jitter: the pauses are the back-off itself
    assert fake.pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_an_outage_longer_than_the_limit_raises_the_last_error_in_time() -> None:
    fake = FakeTime()
    with pytest.raises(StoreUnavailable, match=r"gone \(\d+\)"):
        ride(failing(10_000), fake)
    waited = fake.now - 1000.0
    assert STORE_PATIENCE.limit - STORE_PATIENCE.max_delay * 1.2 < waited <= STORE_PATIENCE.limit


def test_a_deadline_of_the_caller_ends_the_ride_sooner() -> None:
    fake = FakeTime()
    with pytest.raises(StoreUnavailable):
        ride(failing(10_000), fake, until=fake.now + 3.0)
    assert fake.now - 1000.0 <= 3.0
    assert sum(fake.pauses) == pytest.approx(0.1 + 0.2 + 0.4 + 0.8)


@pytest.mark.parametrize(
    "error",
    [StoreError("a broken statement"), StoreTooNew(), LeaseLost("fenced")],
    ids=["StoreError", "StoreTooNew", "LeaseLost"],
)
def test_anything_but_an_outage_is_raised_at_once(error: Exception) -> None:
    fake = FakeTime()
    with pytest.raises(type(error)):
        ride(failing(1, error), fake)
    assert fake.pauses == []


def test_jitter_spreads_each_pause_around_the_back_off() -> None:
    patience = Patience(first_delay=1.0, max_delay=4.0, jitter=0.25)
    assert patience.delay(0, 0.0) == pytest.approx(0.75)
    assert patience.delay(0, 0.999999) == pytest.approx(1.25)
    assert patience.delay(5, 0.5) == pytest.approx(4.0)  # capped before the jitter
    fake = FakeTime()
    draws = iter([0.0, 1.0, 0.25])
    ride_out(
        failing(3),
        patience,
        clock=fake.clock,
        sleep=fake.sleep,
        unit_random=lambda: next(draws),
    )
    assert fake.pauses == pytest.approx([0.75, 2.5, 3.5])


def test_each_retry_is_told_and_a_sleep_that_says_stop_ends_the_ride() -> None:
    fake = FakeTime()
    told: list[tuple[str, float]] = []

    def stop_on_the_second(seconds: float) -> bool:
        fake.sleep(seconds)
        return len(fake.pauses) == 2  # like Event.wait once the event is set

    with pytest.raises(StoreUnavailable, match=r"gone \(2\)"):
        ride_out(
            failing(10),
            clock=fake.clock,
            sleep=stop_on_the_second,
            unit_random=lambda: 0.5,
            on_retry=lambda exc, pause: told.append((exc.message, pause)),
        )
    assert told == [
        ("attempt store: gone (1)", pytest.approx(0.1)),
        ("attempt store: gone (2)", pytest.approx(0.2)),
    ]
