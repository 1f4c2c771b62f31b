"""Whole words from model deltas: a model splits text anywhere, a stream.chunk carries exactly one word."""

from __future__ import annotations

import re

# One word and the whitespace after it. Python's `\s` and `\S` are Unicode-aware, so non-Latin text stays whole.
_WORD = re.compile(r"\S+\s+")


class WordSplitter:
    """Turns arbitrary text deltas into whole words, each with the whitespace that follows it.

    A word is complete only once the next word has begun: until then its trailing whitespace may still grow
    ("word " then "\\n\\nnext"). Text without any whitespace (e.g. Chinese or Japanese) stays one word until
    whitespace comes, because a word is never split across outputs.
    """

    __slots__ = ("_pending", "_started")

    def __init__(self) -> None:
        self._pending = ""
        self._started = False

    def feed(self, delta: str) -> list[str]:
        """The words this delta completed, in order; often none."""
        buf = self._pending + delta if self._pending else delta
        if not self._started:
            buf = buf.lstrip()
            if not buf:
                return []
            self._started = True
        # buf starts with a non-space character, so the matches are contiguous from its start.
        words = _WORD.findall(buf)
        if not words:
            self._pending = buf
        elif buf[-1].isspace():
            # The last word's whitespace may go on in the next delta: hold the word back.
            self._pending = words.pop()
        else:
            self._pending = buf[sum(map(len, words)) :]
        return words

    def flush(self) -> list[str]:
        """The last word, once the model has finished; the splitter is then empty."""
        last, self._pending = self._pending, ""
        return [last] if last else []
