"""The mock provider: a creator's script for any request, deterministic and of exactly its estimated length.

A script is a hook (the topic worked into a sentence), a body shaped for the platform and a call to action, in
paragraphs. The same request always gives the same script; no sentence is said twice; the last word ends a sentence.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from django.conf import settings

from streaming.pacer import Hold, Paced, Sink, get_pacer
from streaming.protocol import Platform, ScriptRequest
from streaming.providers import mock_lines as lines
from streaming.providers.mock_topic import END_PUNCTUATION, TOPIC_MAX_WORDS, Topic, read_topic, shorten

Sentence = list[str]  # one sentence as its words
Paragraph = tuple[list[Sentence], str]  # its sentences and the whitespace after it

AUDIENCE_MAX_WORDS = 8
# Short-form scripts up to this many body words count their points out loud ("First, ...").
ORDINAL_BODY_MAX_WORDS = 150
# YouTube long-form: about one chapter per this many words, from 150 words up.
WORDS_PER_CHAPTER = 200
CHAPTERS_FROM_WORDS = 150
LONGEST_CLOSER = max(lines.CLOSERS)


def _fill(template: str, text: str) -> Sentence:
    # str.replace, not format: a topic may hold braces.
    return template.replace("{t}", text).split()


def _lower_first(word: str) -> str:
    return word[:1].lower() + word[1:]


def _lowered(sentence: Sequence[str]) -> Sentence:
    return [_lower_first(sentence[0]), *sentence[1:]]


def _pop_fitting(sentences: list[_S], room: int) -> _S | None:
    for i, sentence in enumerate(sentences):
        if len(sentence) <= room:
            return sentences.pop(i)
    return None


# ---------------------------------------------------------------- the body: sentences drawn without repeats


_S = TypeVar("_S", bound=Sequence[str])
# Each bank split into words once, at import: a script shuffles these instead of splitting every sentence of
# every bank again (~0.25 ms of CPU a script: 5 % of the event loop during a burst of 2,000 starts).
_SPLIT_BANKS = {kind: [tuple(s.split()) for s in bank] for kind, bank in lines.BANKS.items()}
_SPLIT_TIPS = [tuple(s.split()) for s in lines.TIPS]


class _Lines:
    """One script's body sentences: each bank shuffled once, each sentence said once, then led tips and reasons."""

    def __init__(self, rng: random.Random, kinds: tuple[str, ...], said: set[str]) -> None:
        self._rng = rng
        self._banks = {kind: rng.sample(_SPLIT_BANKS[kind], len(_SPLIT_BANKS[kind])) for kind in kinds}
        self._kinds = kinds
        self._tips = rng.sample(_SPLIT_TIPS, len(_SPLIT_TIPS))
        self._pairs: Iterator[Sentence] | None = None
        self._spare: list[Sentence] = []
        self._said = said

    def take(self, kind: str, room: int, lead: str = "") -> Sentence | None:
        """An unsaid sentence of at most `room` words, of this kind if one fits, behind `lead` if given."""
        extra = len(lead.split())
        for name in (kind, *self._kinds):
            bank = self._banks.get(name, [])
            while (sentence := _pop_fitting(bank, room - extra)) is not None:
                led = [*lead.split(), *_lowered(sentence)] if lead else list(sentence)
                if self.say(led):
                    return led
        return self._pair(room)

    def closer(self, room: int) -> Sentence:
        """An end-of-body line of exactly `room` words (1 to LONGEST_CLOSER)."""
        for text in self._rng.sample(lines.CLOSERS[room], len(lines.CLOSERS[room])):
            if self.say(sentence := text.split()):
                return sentence
        raise RuntimeError(f"no unsaid closer of {room} words")

    def say(self, sentence: Sentence) -> bool:
        """Mark a sentence said; False if it already was."""
        text = " ".join(sentence)
        if text in self._said:
            return False
        self._said.add(text)
        return True

    def _pair(self, room: int) -> Sentence | None:
        """Once the banks are spent (the longest scripts): a tip behind a lead or a reason called back, each once."""
        if self._pairs is None:
            self._pairs = self._all_pairs()
        while (sentence := _pop_fitting(self._spare, room)) is not None:
            if self.say(sentence):
                return sentence
        for sentence in self._pairs:
            if len(sentence) <= room and self.say(sentence):
                return sentence
            self._spare.append(sentence)
        return None

    def _all_pairs(self) -> Iterator[Sentence]:
        """Tips behind a lead, interleaved with reasons called back ("As I said earlier, ...")."""
        leads, callbacks = lines.LEADS, lines.CALLBACKS
        reasons = [s.split() for s in self._rng.sample(lines.REASONS, len(lines.REASONS))]
        for shift in range(max(len(leads), len(callbacks))):
            for i in range(max(len(self._tips), len(reasons))):
                if shift < len(leads) and i < len(self._tips):
                    yield [*leads[(i + shift) % len(leads)].split(), *_lowered(self._tips[i])]
                if shift < len(callbacks) and i < len(reasons):
                    yield [*callbacks[(i + shift) % len(callbacks)].split(), *_lowered(reasons[i])]


# ---------------------------------------------------------------- the script

_HOOKS = {"phrase": lines.PHRASE_HOOKS, "clause": lines.CLAUSE_HOOKS, "question": lines.QUESTION_HOOKS}
_COUNTED_ALOUD = frozenset({Platform.TIKTOK, Platform.YOUTUBE_SHORTS})
_HOOK_LABEL = ["Hook:"]
_CTA_LABEL = ["Call", "to", "action:"]


def mock_script(request: ScriptRequest) -> list[str]:
    """The script as words, each with the whitespace after it; exactly request.estimated_words of them."""
    return list(_script_of(request.topic, request.platform, request.duration, request.tone, request.audience))


# Scripts are a function of these five fields: the same request asked again (a creator's retry, a bench's
# topics) costs a lookup, not the ~130 us of writing it.
SCRIPTS_KEPT = 256


@functools.lru_cache(maxsize=SCRIPTS_KEPT)
def _script_of(topic: str, platform: Platform, duration: int, tone: str, audience: str) -> tuple[str, ...]:
    return tuple(_write(ScriptRequest(topic, platform, duration, tone, audience)))


def _write(request: ScriptRequest) -> list[str]:
    seed = "\x1f".join([request.topic, request.platform, str(request.duration), request.tone, request.audience])
    rng = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - determinism, not security
    target = request.estimated_words
    topic = read_topic(request.topic)
    ctas = [s.split() for s in lines.CALLS_TO_ACTION[request.platform]]
    if target < len(_HOOK_LABEL) + len(_CTA_LABEL) + len(ctas[-1]) + 3:
        return _too_short_script(topic, target, rng)
    titles = _chapter_titles(request.platform, target, rng)
    hook, cta = _hook_and_cta(request, topic, titles, ctas, rng)
    said = {" ".join(sentence) for sentence in [*hook, cta]}
    kinds = tuple(dict.fromkeys(kind for shape in lines.PARAGRAPHS[request.platform] for kind in shape))
    room = target - _fixed_words(hook, cta)
    paragraphs: list[Paragraph] = [([[*_HOOK_LABEL, *hook[0]], *hook[1:]], "\n\n")]
    paragraphs += _body(_Lines(rng, kinds, said), request.platform, room, titles)
    paragraphs.append(([[*_CTA_LABEL, *cta]], ""))
    return _words(paragraphs)


def _fixed_words(hook: list[Sentence], cta: Sentence) -> int:
    return len(_HOOK_LABEL) + sum(map(len, hook)) + len(_CTA_LABEL) + len(cta)


def _hook_and_cta(
    request: ScriptRequest, topic: Topic, titles: list[str], ctas: list[Sentence], rng: random.Random
) -> tuple[list[Sentence], Sentence]:
    """The richest hook and call to action that leave the body a third of the script, else the shortest that fit."""
    target = request.estimated_words
    full = shorten(topic, TOPIC_MAX_WORDS)
    topic_line = _fill(rng.choice(_HOOKS[full.kind]), full.text())
    follow = [rng.choice(lines.QUESTION_FOLLOW_UPS).split()] if full.kind == "question" else []
    opener = rng.choice(lines.OPENERS[request.platform]).split()
    extras = [rng.choice(lines.PROMISES[request.platform]).split()]
    if request.audience:
        extras.append(_fill(lines.AUDIENCE_LINE, _audience(request.audience)))
    if titles:
        extras.append(_fill(lines.OVERVIEW_LINE, _overview(titles)))
    levels = [
        ([opener, topic_line, *follow, *extras], ctas[0]),
        ([topic_line, *follow, *extras], ctas[0]),
        ([topic_line, *follow], ctas[1]),
        ([topic_line], ctas[2]),
        ([tiny := _tiny_hook(full, target)], ctas[2]),
        ([tiny], ctas[3]),
    ]
    fitting = [(hook, cta) for hook, cta in levels if _fixed_words(hook, cta) <= target]
    for hook, cta in fitting:
        if target - _fixed_words(hook, cta) >= target // 3:
            return hook, cta
    if fitting:
        return fitting[-1]
    return [_tiny_hook(topic, target - len(_HOOK_LABEL) - len(_CTA_LABEL) - len(ctas[-1]))], ctas[-1]


def _tiny_hook(topic: Topic, budget: int) -> Sentence:
    """The topic in a sentence of at most `budget` words (3 or more), for scripts of a few seconds."""
    for kind in (topic.kind, "phrase"):
        extra = len(lines.TINY_HOOKS[kind].split()) - 1
        short = shorten(replace(topic, kind=kind), max(1, budget - extra))
        sentence = _fill(lines.TINY_HOOKS[kind], short.text())
        if short.kind == kind and len(sentence) <= budget:
            return sentence
    return _too_short(topic, budget)


def _too_short_script(topic: Topic, target: int, rng: random.Random) -> list[str]:
    """Below the protocol's shortest script (5 s, 12 words) there is no room for a shape: the topic, a closer."""
    if target == 1:
        return ["Hook."]
    hook = _too_short(topic, target - 1)
    rest = target - 1 - len(hook)
    closing = [_Lines(rng, (), set()).closer(rest)] if rest else []
    return _words([([[*_HOOK_LABEL, *hook], *closing], "")])


def _too_short(topic: Topic, count: int) -> Sentence:
    """Only the quoted topic, cut to `count` words and ended with a full stop."""
    words = Topic("phrase", shorten(topic, count).words[:count]).text().split()
    return [*words[:-1], words[-1] + "."]


def _audience(text: str) -> str:
    words = text.split()
    if len(words) <= AUDIENCE_MAX_WORDS:
        return " ".join(words).rstrip(END_PUNCTUATION) or "you"
    return " ".join(words[:AUDIENCE_MAX_WORDS]).rstrip(END_PUNCTUATION) + "…"


def _chapter_titles(platform: Platform, target: int, rng: random.Random) -> list[str]:
    """YouTube long-form chapters: the basics first, putting it together last, the others drawn for this script."""
    if platform != Platform.YOUTUBE or target < CHAPTERS_FROM_WORDS:
        return []
    count = min(len(lines.CHAPTERS), max(2, round(target / WORDS_PER_CHAPTER)))
    first, *middle, last = lines.CHAPTERS
    return [first, *rng.sample(middle, count - 2), last]


def _overview(titles: list[str]) -> str:
    items = [_lower_first(title) for title in titles[:3]] + (["more"] if len(titles) > 3 else [])
    if len(items) == 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _body(said: _Lines, platform: Platform, room: int, titles: list[str]) -> list[Paragraph]:
    """Paragraphs of exactly `room` words in the platform's shape (chapters on YouTube), ending on a sentence."""
    shapes = itertools.cycle(lines.PARAGRAPHS[platform])
    counted = platform in _COUNTED_ALOUD and room <= ORDINAL_BODY_MAX_WORDS
    ordinals = iter(lines.ORDINALS if counted else [])
    if not titles:
        return _paragraphs(said, shapes, ordinals, room, room)[0]
    parts = [_chapter_parts(titles, k) for k in range(len(titles))]
    paragraphs: list[Paragraph] = []
    for k, (heading, intro, recap) in enumerate(parts):
        # Each chapter takes an even share of what is left, so one chapter's overshoot shrinks the next ones.
        later = sum(len(h) + len(i) + len(r) for h, i, r in parts[k + 1 :])
        paragraphs.append(([heading], "\n"))
        room -= len(heading)
        said.say(intro)
        last = k == len(parts) - 1
        chapter_room = room - later - len(recap)
        share = chapter_room if last else chapter_room // (len(parts) - k)
        chapter, used = _paragraphs(said, shapes, ordinals, chapter_room, share, first=intro)
        if recap:
            chapter[-1][0].append(recap)
        paragraphs += chapter
        room -= used + len(recap)
    return paragraphs


def _chapter_parts(titles: list[str], k: int) -> tuple[Sentence, Sentence, Sentence]:
    """A chapter's heading, its opening line, and its closing recap (none for the last chapter)."""
    heading = ["Chapter", f"{k + 1}:", *(titles[k] + ".").split()]
    recap = _fill(lines.RECAP_LINE, _lower_first(titles[k])) if k < len(titles) - 1 else []
    return heading, lines.CHAPTERS[titles[k]].split(), recap


def _paragraphs(
    said: _Lines,
    shapes: Iterator[tuple[str, ...]],
    ordinals: Iterator[str],
    room: int,
    stop_at: int,
    *,
    first: Sentence | None = None,
) -> tuple[list[Paragraph], int]:
    """Paragraphs until at least `stop_at` of `room` words are used; exactly `room` when stop_at == room."""
    paragraphs: list[Paragraph] = []
    current = [first] if first else []
    used = len(first) if first else 0
    while used < stop_at:
        if room - used <= LONGEST_CLOSER:
            (current or (paragraphs[-1][0] if paragraphs else current)).append(said.closer(room - used))
            used = room
            break
        for i, kind in enumerate(next(shapes)):
            lead = next(ordinals, "") if i == 0 and kind == "tip" else ""
            # Nothing of any kind fits (a safety net, not seen in the tests): the longest closer, then on.
            sentence = said.take(kind, room - used, lead) or said.closer(LONGEST_CLOSER)
            current.append(sentence)
            used += len(sentence)
            if room - used <= LONGEST_CLOSER:
                break
        paragraphs.append((current, "\n\n"))
        current = []
    if current:
        paragraphs.append((current, "\n\n"))
    return paragraphs, used


def _words(paragraphs: list[Paragraph]) -> list[str]:
    words: list[str] = []
    for sentences, after in paragraphs:
        flat = [word for sentence in sentences for word in sentence]
        words += [word + " " for word in flat[:-1]]
        words.append(flat[-1] + after)
    words[-1] = words[-1].rstrip()
    return words


class MockScriptStream:
    """The mock script, MOCK_STREAM_DELAY_MS a word: each word falls due at start + seq x delay.

    The runner takes the words through push(): the process's pacer hands every due word of every mock stream
    over in one pass, with no timer or task step per word. Iterating (`async for`) paces this one stream with
    its own timer, word by word, as the bare baseline consumer of the bench does.
    """

    def __init__(self, words: list[str], delay_s: float) -> None:
        self._words = words
        self._delay_s = delay_s
        self._closed = False
        self._paced: Paced | None = None
        self.usage: dict[str, Any] = {}

    async def push(self, sink: Sink, hold: Hold | None = None) -> None:
        """Hand the words to `sink` in batches as they fall due (held as `hold` says); return after the last one."""
        if self._closed:
            return
        self._paced = get_pacer().pace(self._words, self._delay_s, sink, hold)
        try:
            await self._paced.done
        finally:
            self._paced.close()
        self._set_usage()

    async def _generate(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        due = loop.time()
        for word in self._words:
            if self._closed:
                return
            if self._delay_s:
                # Paced against the schedule, not "delay after each word": timer overshoot must not add up.
                due += self._delay_s
                await asyncio.sleep(max(0.0, due - loop.time()))
            yield word
        self._set_usage()

    def _set_usage(self) -> None:
        self.usage = {"prompt_tokens": 0, "completion_tokens": len(self._words), "total_tokens": len(self._words)}

    def __aiter__(self) -> AsyncIterator[str]:
        return self._generate()

    async def aclose(self) -> None:
        self._closed = True
        if self._paced is not None:
            self._paced.close()


class MockProvider:
    """Used when no OPENAI_API_KEY is set, and as the fallback when AI_FALLBACK=mock."""

    name = "mock"
    model = "mock-1"
    whole_words = True

    async def open(self, request: ScriptRequest) -> MockScriptStream:
        delay_s = settings.STREAMING["MOCK_STREAM_DELAY_MS"] / 1000
        return MockScriptStream(mock_script(request), delay_s)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model}
