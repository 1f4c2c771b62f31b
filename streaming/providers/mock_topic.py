"""How the creator's topic reads in the mock's sentences: a question, a "how / why ..." clause, or a quoted phrase."""

from __future__ import annotations

from dataclasses import dataclass, replace

_CLAUSE_WORDS = frozenset({"how", "why", "what", "when", "where", "who", "which"})
_AUX_WORDS = frozenset({"is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will"})
_QUOTE_PAIRS = {'"': '"', "“": "”", "«": "»"}
_DASHES = frozenset({"-", "\u2013", "\u2014"})  # hyphen, en dash, em dash
END_PUNCTUATION = " .,;:!?…"
# A topic is quoted whole up to here; a longer one is cut at a clause boundary, or with an ellipsis.
TOPIC_MAX_WORDS = 12
TOPIC_MAX_CHARS = 80


@dataclass(frozen=True, slots=True)
class Topic:
    """The creator's topic: a question, a "how / why ..." clause, or a phrase to quote."""

    kind: str  # "question" | "clause" | "phrase"
    words: tuple[str, ...]

    def text(self) -> str:
        """The topic ready for its hook template: the question as a sentence, the clause in lower case, or quoted."""
        words = list(self.words)
        if self.kind == "question":
            words[0] = words[0][:1].upper() + words[0][1:]
            return " ".join(words) + "?"
        if self.kind == "clause":
            if words[0] == words[0].capitalize():
                words[0] = words[0].lower()
            return " ".join(words)
        return "“" + " ".join(words) + "”"


def read_topic(raw: str) -> Topic:
    """What kind of topic this is, without its trailing punctuation or wrapping quotes."""
    text = " ".join(raw.split())
    stripped = ""
    while True:
        core = text.rstrip(END_PUNCTUATION)
        stripped += text[len(core) :]
        closing = _QUOTE_PAIRS.get(core[:1])
        if not closing or len(core) < 2 or core[-1] != closing or closing in core[1:-1]:
            break
        text = core[1:-1].strip()
    if not core:  # nothing but punctuation: quote it as it is
        return Topic("phrase", tuple(text.split()) or ("this",))
    words = tuple(core.split())
    first = words[0].lower()
    if "?" in stripped or (first in _CLAUSE_WORDS | _AUX_WORDS and len(words) > 1 and words[1].lower() in _AUX_WORDS):
        return Topic("question", words)
    if first in _AUX_WORDS and len(words) >= 3:
        return Topic("question", words)
    return Topic("clause" if first in _CLAUSE_WORDS and len(words) > 1 else "phrase", words)


def shorten(topic: Topic, max_words: int, max_chars: int = TOPIC_MAX_CHARS) -> Topic:
    """At most max_words words (and about max_chars): cut at a clause boundary, else quoted with an ellipsis."""
    words = topic.words
    if len(words) <= max_words and len(" ".join(words)) <= max_chars:
        return topic
    cut = list(words[:max_words])
    while len(cut) > 1 and len(" ".join(cut)) > max_chars:
        cut.pop()
    for end in range(len(cut), 0, -1):
        if cut[end - 1][-1] in ",;:" or (end < len(words) and words[end] in _DASHES):
            kept = [*cut[: end - 1], cut[end - 1].rstrip(END_PUNCTUATION)]
            if all(kept):
                return replace(topic, words=tuple(kept))
    last = cut[-1][:max_chars].rstrip(END_PUNCTUATION) or cut[-1][:max_chars]
    return Topic("phrase", (*cut[:-1], last + "…"))
