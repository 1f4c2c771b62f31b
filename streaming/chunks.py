"""Consecutive words of one session, and their stream.chunk frames: built once, whoever listens."""

from __future__ import annotations

from streaming import protocol

# A multi-word frame holds at most this many words (a replay of a long script goes out in frames this size):
# about 700 bytes of text, small enough that one frame never holds up the frames of other streams.
MAX_WORDS_PER_FRAME = 100


class Words:
    """Words `first_seq`..`last_seq` of a session, as the runner or the store hands them to a watch."""

    __slots__ = ("_frames", "estimated_words", "first_seq", "held", "session_id", "words")

    def __init__(
        self, session_id: str, first_seq: int, words: list[str], estimated_words: int, *, held: bool = False
    ) -> None:
        self.session_id = session_id
        # Held by the pacer for one multi-word window already: a watch sends them at once, holding nothing more.
        self.held = held
        self.first_seq = first_seq
        self.words = words
        self.estimated_words = estimated_words
        self._frames: list[str] | None = None

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.words) - 1

    def one_word_frames(self) -> list[str]:
        """One stream.chunk per word (clients that did not ask for more), made once for all such listeners."""
        if self._frames is None:
            sid, est = self.session_id, self.estimated_words
            self._frames = [
                protocol.stream_chunk(sid, seq, text, est) for seq, text in enumerate(self.words, self.first_seq)
            ]
        return self._frames


def multi_word_frames(session_id: str, words: list[str], last_seq: int, estimated_words: int) -> list[str]:
    """`words` (ending at `last_seq`) as stream.chunk frames of up to MAX_WORDS_PER_FRAME words each."""
    frames = []
    first = last_seq - len(words) + 1
    for start in range(0, len(words), MAX_WORDS_PER_FRAME):
        part = words[start : start + MAX_WORDS_PER_FRAME]
        seq = first + start + len(part) - 1
        frames.append(protocol.stream_chunks(session_id, seq, len(part), "".join(part), estimated_words))
    return frames
