"""The pacer: each word handed over at or after its own due time, all due words of all streams in one pass."""

from __future__ import annotations

import asyncio

import pytest

from streaming.pacer import HOLD_S, Paced, Pacer

TIMEOUT_S = 5


async def test_due_count_follows_start_plus_seq_times_delay() -> None:
    """Word k is due at start + k x delay: none at the start, k of them at exactly k delays later."""
    done = asyncio.get_running_loop().create_future()
    paced = Paced(["a ", "b ", "c "], 0.025, lambda _words: None, start=10.0, done=done)
    assert paced.due_count(10.0) == 0
    assert paced.due_count(10.024) == 0
    assert paced.due_count(10.025) == 1
    assert paced.due_count(10.075) == 3
    assert paced.due_count(99.0) == 3  # never more than the stream has


async def test_no_delay_means_every_word_is_due_at_once() -> None:
    done = asyncio.get_running_loop().create_future()
    paced = Paced(["a ", "b "], 0.0, lambda _words: None, start=10.0, done=done)
    assert paced.due_count(10.0) == 2


async def test_words_never_arrive_before_their_due_time() -> None:
    """Every word handed over is due by the time it is handed over, and all arrive once, in order."""
    pacer = Pacer()
    loop = asyncio.get_running_loop()
    words = [f"w{i} " for i in range(20)]
    got: list[tuple[float, list[str]]] = []
    paced = pacer.pace(words, 0.004, lambda batch: got.append((loop.time(), batch)))
    async with asyncio.timeout(TIMEOUT_S):
        await paced.done
    assert [word for _at, batch in got for word in batch] == words
    seq = 0
    for at, batch in got:
        seq += len(batch)
        assert at >= paced.start + seq * 0.004 - 1e-6  # the batch's last word was due
    pacer.close()


async def test_one_pass_serves_every_stream_that_is_due() -> None:
    """Streams whose words are all due get them in one call each, within the same pass."""
    pacer = Pacer()
    calls: list[tuple[str, int]] = []
    first = pacer.pace(["a ", "b ", "c "], 0.0, lambda batch: calls.append(("first", len(batch))))
    second = pacer.pace(["d ", "e "], 0.0, lambda batch: calls.append(("second", len(batch))))
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(first.done, second.done)
    assert sorted(calls) == [("first", 3), ("second", 2)]
    pacer.close()


async def test_closed_stream_gets_nothing_more() -> None:
    """A stream closed mid-way (cancel) is handed no word after its close."""
    pacer = Pacer()
    got: list[str] = []
    paced = pacer.pace([f"w{i} " for i in range(1000)], 0.002, got.extend)
    async with asyncio.timeout(TIMEOUT_S):
        while not got:
            await asyncio.sleep(0.002)
    paced.close()
    count = len(got)
    other = pacer.pace(["x "] * 5, 0.004, lambda _batch: None)  # the clock keeps running for others
    async with asyncio.timeout(TIMEOUT_S):
        await other.done
    assert len(got) == count < 1000
    pacer.close()


async def test_a_failing_sink_fails_only_its_stream() -> None:
    pacer = Pacer()

    def broken(_batch: list[str]) -> None:
        raise RuntimeError("listener bug")

    bad = pacer.pace(["a "], 0.0, broken)
    good = pacer.pace(["b "], 0.0, lambda _batch: None)
    async with asyncio.timeout(TIMEOUT_S):
        await good.done
        with pytest.raises(RuntimeError):
            await bad.done
    pacer.close()


async def test_hold_releases_after_its_window() -> None:
    """A held frame is released once, HOLD_S after it was held (never before)."""
    pacer = Pacer()
    loop = asyncio.get_running_loop()
    released = asyncio.Event()
    held_at = loop.time()
    times: list[float] = []

    def release() -> None:
        times.append(loop.time())
        released.set()

    pacer.hold(release)
    async with asyncio.timeout(TIMEOUT_S):
        await released.wait()
    assert len(times) == 1 and times[0] >= held_at + HOLD_S - 1e-6
    pacer.close()


async def test_close_cancels_streams_still_running() -> None:
    pacer = Pacer()
    paced = pacer.pace(["a "] * 10, 10.0, lambda _batch: None)
    pacer.close()
    with pytest.raises(asyncio.CancelledError):
        await paced.done


async def test_next_hand_over_adds_the_hold_but_never_passes_the_last_word() -> None:
    """Held: the next word's due time plus the hold; near the end, the last word's due time (not held)."""
    done = asyncio.get_running_loop().create_future()
    paced = Paced(["a ", "b ", "c ", "d "], 0.025, lambda _words: None, start=10.0, done=done, hold=lambda: 0.035)
    assert paced.next_hand_over() == pytest.approx(10.025 + 0.035)
    paced.sent = 2
    assert paced.next_hand_over() == pytest.approx(10.1)  # word 3 at 10.075 + 0.035 would pass word 4 (10.1)
    paced.hold = lambda: 0.0  # a listener that takes one word a frame joined: no hold from now on
    assert paced.next_hand_over() == pytest.approx(10.075)


async def test_held_stream_gets_its_words_in_fewer_hand_overs_each_within_the_hold() -> None:
    """With a hold, each hand-over comes after its first word's due time plus the hold (the multi-word window),
    no word is early, every word arrives once in order, and the last one is handed over when it is due."""
    pacer = Pacer()
    loop = asyncio.get_running_loop()
    words = [f"w{i} " for i in range(12)]
    delay, hold = 0.01, 0.025
    got: list[tuple[float, list[str]]] = []
    paced = pacer.pace(words, delay, lambda batch: got.append((loop.time(), batch)), hold=lambda: hold)
    async with asyncio.timeout(TIMEOUT_S):
        await paced.done
    assert [word for _at, batch in got for word in batch] == words
    assert len(got) < len(words)
    seq = 0
    for at, batch in got:
        first_due = paced.start + (seq + 1) * delay
        seq += len(batch)
        assert at >= paced.start + seq * delay - 1e-6  # nothing early
        if seq < len(words):
            assert at >= first_due + hold - 1e-6  # held for the window
    pacer.close()
