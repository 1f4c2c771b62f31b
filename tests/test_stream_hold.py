"""When the runner holds a stream's words for multi-word frames: only while nobody could want them one by one."""

from __future__ import annotations

from typing import Any

from streaming.chunks import Words
from streaming.pacer import HOLD_S
from streaming.protocol import Platform, ScriptRequest
from streaming.runner import LiveStream, _hold_s, emit_words


class Listener:
    def __init__(self, *, batch: bool) -> None:
        self.batch = batch
        self.got: list[Words] = []

    def deliver_started(self, frame: str) -> None:
        pass

    def deliver_words(self, words: Words) -> None:
        self.got.append(words)

    def deliver_terminal(self, frame: dict[str, Any]) -> None:
        pass


def live_stream(*listeners: Listener) -> LiveStream:
    request = ScriptRequest(topic="coffee", platform=Platform.TIKTOK, duration=30)
    live = LiveStream("s-1", 1, None, request, "proc-a")
    live.listeners.update(listeners)
    return live


def test_held_while_every_listener_takes_multi_word_frames() -> None:
    live = live_stream(Listener(batch=True), Listener(batch=True))
    assert _hold_s(live) == HOLD_S
    assert live.held


def test_not_held_once_a_one_word_listener_is_there() -> None:
    live = live_stream(Listener(batch=True), Listener(batch=False))
    assert _hold_s(live) == 0
    assert not live.held


def test_not_held_while_another_process_watches() -> None:
    """A watcher elsewhere may serve a client that takes one word a frame; its words must not wait here."""
    live = live_stream(Listener(batch=True))
    live.remote_watched = True
    assert _hold_s(live) == 0


def test_held_words_are_marked_for_the_watches() -> None:
    listener = Listener(batch=True)
    live = live_stream(listener)
    emit_words(live, ["a ", "b "], held=True)
    emit_words(live, ["c "])
    assert [(w.first_seq, w.words, w.held) for w in listener.got] == [(1, ["a ", "b "], True), (3, ["c "], False)]
    assert live.seq == 3
