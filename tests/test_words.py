"""WordSplitter: arbitrary model deltas in, whole words with their trailing whitespace out."""

from __future__ import annotations

import pytest

from streaming.words import WordSplitter


def split(deltas: list[str]) -> list[str]:
    splitter = WordSplitter()
    words = [word for delta in deltas for word in splitter.feed(delta)]
    return words + splitter.flush()


@pytest.mark.parametrize(
    ("deltas", "words"),
    [
        (["Hello world"], ["Hello ", "world"]),
        (["Hel", "lo wo", "rld"], ["Hello ", "world"]),
        (["Hello", " ", "world"], ["Hello ", "world"]),
        (["Hello ", "", " world"], ["Hello  ", "world"]),
        (["  \n Hello", " world"], ["Hello ", "world"]),
        (["", " ", "Hi"], ["Hi"]),
        (["one\n\n", "two"], ["one\n\n", "two"]),
        (["one ", "\n", "two\t", "three"], ["one \n", "two\t", "three"]),
        (["end.\n"], ["end.\n"]),
        (["Caf", "é crème"], ["Café ", "crème"]),
        (["世", "界 こんにち", "は"], ["世界 ", "こんにちは"]),
        (["Привет, ", "ми", "р!"], ["Привет, ", "мир!"]),  # noqa: RUF001 - Cyrillic on purpose
        (["👍", "🏽 ok"], ["👍🏽 ", "ok"]),
        (["a\u00a0b c"], ["a\u00a0", "b ", "c"]),
        ([], []),
        (["   "], []),
    ],
)
def test_split_table(deltas: list[str], words: list[str]) -> None:
    """Deltas split anywhere come out as whole words, each with the whitespace after it."""
    assert split(deltas) == words


def test_every_split_point_gives_the_same_words() -> None:
    """Cutting a text at every possible point never changes the words."""
    text = "Stop scrolling: 咖啡 is easier than you think.\n\nFollow for more 👍🏽"
    expected = split([text])
    for cut in range(len(text) + 1):
        assert split([text[:cut], text[cut:]]) == expected


def test_one_character_deltas() -> None:
    """A model that sends one character at a time still yields whole words."""
    text = "one two  three\nfour"
    assert split(list(text)) == ["one ", "two  ", "three\n", "four"]


def test_words_join_back_to_the_text() -> None:
    """The words concatenate to the text minus its leading whitespace."""
    text = "\n  Hook: coffee!\n\nBody text here.  Call to action. "
    assert "".join(split([text[i : i + 4] for i in range(0, len(text), 4)])) == text.lstrip()


def test_word_is_held_until_the_next_word_starts() -> None:
    """A word and its whitespace are emitted only once the next word begins (its whitespace may grow)."""
    splitter = WordSplitter()
    assert splitter.feed("Hello ") == []
    assert splitter.feed("\n") == []
    assert splitter.feed("w") == ["Hello \n"]


def test_flush_empties_the_splitter() -> None:
    """flush() returns the last word once; a second flush returns nothing."""
    splitter = WordSplitter()
    splitter.feed("last")
    assert splitter.flush() == ["last"]
    assert splitter.flush() == []
