"""ordered_map: input order, errors per item, a slow first item does not idle the other threads, prompt stop."""

from __future__ import annotations

import threading
import time

from skinmask.errors import InputError
from skinmask.parallel import Cancelled, ordered_map


def test_results_in_input_order_with_errors_per_item() -> None:
    def fn(i: int, stop: threading.Event) -> int:
        time.sleep(0.002 * (7 - i % 7))  # later items finish first
        if i == 3:
            raise InputError("bad", f"in{i}")
        return i * i

    out = list(ordered_map(fn, list(range(20)), jobs=3))
    assert [i for i, _, _ in out] == list(range(20))
    assert [v for i, v, e in out if i != 3] == [i * i for i in range(20) if i != 3]
    assert str(out[3][2]) == "in3: bad" and out[3][1] is None


def test_a_slow_first_item_leaves_the_others_running() -> None:
    others_done = threading.Event()
    finished: list[int] = []

    def fn(i: int, stop: threading.Event) -> int:
        if i == 0:  # a long video: it finishes only after every other input has
            assert others_done.wait(10), "the other inputs waited behind the first"
        else:
            finished.append(i)
            if len(finished) == 49:
                others_done.set()
        return i

    assert [i for i, _, _ in ordered_map(fn, list(range(50)), jobs=2)] == list(range(50))


def test_stopping_early_stops_the_running_items() -> None:
    stopped: list[int] = []

    def fn(i: int, stop: threading.Event) -> int:
        if i == 0:
            return 0
        while not stop.is_set():  # a long video between two frames
            time.sleep(0.001)
        stopped.append(i)
        raise Cancelled

    results = ordered_map(fn, list(range(8)), jobs=2)
    assert next(results)[0] == 0
    start = time.monotonic()
    results.close()  # the consumer stops (Ctrl-C, an error): running items end, queued ones never start
    assert time.monotonic() - start < 5
    assert stopped and set(stopped) <= {1, 2}
