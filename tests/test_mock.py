"""The mock's scripts: deterministic, exactly the estimated length, no sentence twice, the topic worked in properly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from streaming.protocol import MIN_DURATION_S, PLATFORM_MAX_DURATION_S, TOPIC_MAX_CHARS, Platform, ScriptRequest
from streaming.providers import mock_lines
from streaming.providers.mock import MockProvider, mock_script
from streaming.providers.mock_topic import read_topic, shorten
from tests.servers import ROOT

TOPICS = [
    "Why sourdough needs patience",
    "How to brew pour-over coffee",
    "Why does sourdough need patience?",
    "What is the best camera for beginners",
    "pour-over coffee!!!",
    '"Sourdough basics"',
    "AI",
    "Crème brûlée für Anfänger",
    "寿司の作り方",
    "¿Cómo hacer pan?",
    "{t} and {0} in a topic",
    " ".join(["fermentation"] * 45)[:TOPIC_MAX_CHARS],
    ("The surprising history of sourdough bread, from ancient Egypt to the bakery down the street " * 6)[
        :TOPIC_MAX_CHARS
    ].strip(),
]
DURATIONS = [5, 6, 7, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200]
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def request(topic: str = "pour-over coffee", platform: Platform = Platform.TIKTOK, duration: int = 60) -> ScriptRequest:
    return ScriptRequest(topic=topic, platform=platform, duration=duration)


def script(topic: str = "pour-over coffee", platform: Platform = Platform.TIKTOK, duration: int = 60) -> str:
    return "".join(mock_script(request(topic, platform, duration)))


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def every_request() -> list[ScriptRequest]:
    return [
        request(topic, platform, duration)
        for platform in Platform
        for duration in DURATIONS
        if duration <= PLATFORM_MAX_DURATION_S[platform]
        for topic in TOPICS
    ]


# ---------------------------------------------------------------- length, words, determinism


def test_exact_length_for_every_platform_and_duration() -> None:
    """Every platform, 5 s to its longest, every topic kind: exactly the estimated number of words."""
    wrong = [
        (r.platform.value, r.duration, r.topic[:20], len(words))
        for r in every_request()
        if len(words := mock_script(r)) != r.estimated_words
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("platform", list(Platform))
def test_exact_length_for_every_second_of_short_scripts(platform: Platform) -> None:
    """Each duration from 5 s to 2 minutes, one by one: exact, because the fitting is hardest when short."""
    for duration in range(MIN_DURATION_S, 121):
        for topic in ("Why sourdough needs patience", "Why does sourdough need patience?", TOPICS[-1]):
            r = request(topic, platform, duration)
            assert len(mock_script(r)) == r.estimated_words, (duration, topic)


@pytest.mark.parametrize("duration", [0, 1, 2, 3, 4])
def test_below_the_shortest_duration_still_exact(duration: int) -> None:
    """Under 5 s (refused by the protocol, but not the mock's to crash on): still exact, still a sentence."""
    for topic in TOPICS:
        words = mock_script(request(topic, Platform.TIKTOK, duration))
        assert len(words) == request(duration=duration).estimated_words and words[-1][-1] in ".!?", words


def test_words_are_whole_and_end_on_a_sentence() -> None:
    """Each item is one word with its whitespace; the last has none and ends a sentence."""
    for r in every_request():
        words = mock_script(r)
        assert all(len(word.split()) == 1 and not word[0].isspace() for word in words), r
        assert all(word[-1].isspace() for word in words[:-1]), r
        assert words[-1][-1] in ".!?", (r, words[-1])


def test_same_request_same_script() -> None:
    """Deterministic: the same request twice gives the same words; another topic or length gives others."""
    assert mock_script(request()) == mock_script(request())
    assert script("pour-over coffee") != script("cold brew coffee")
    assert script(duration=60) != script(duration=61)


def test_same_script_in_another_process() -> None:
    """Deterministic across processes: nothing depends on Python's per-process string hashing."""
    code = (
        "import json; from streaming.providers.mock import mock_script; from streaming.protocol import *;"
        "print(json.dumps(mock_script(ScriptRequest('Why sourdough needs patience', Platform.YOUTUBE, 300))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True, timeout=60)
    assert json.loads(out.stdout) == mock_script(request("Why sourdough needs patience", Platform.YOUTUBE, 300))


async def test_provider_streams_the_script_then_reports_usage() -> None:
    """MockProvider.open: the prebuilt words in order (no pacing in tests), then usage counts them."""
    stream = await MockProvider().open(request(duration=30))
    words = [word async for word in stream]
    assert words == mock_script(request(duration=30)) and stream.usage["completion_tokens"] == 75


# ---------------------------------------------------------------- reads like a script


def test_no_sentence_is_said_twice() -> None:
    """Within a script no sentence repeats, up to a 20-minute YouTube script (3,000 words)."""
    for r in every_request():
        counts = Counter(sentences("".join(mock_script(r))))
        repeated = [s for s, n in counts.items() if n > 1]
        assert not repeated, (r.platform.value, r.duration, r.topic[:20], repeated)


@pytest.mark.parametrize("platform", list(Platform))
def test_hook_body_call_to_action(platform: Platform) -> None:
    """Hook first, the call to action last (the platform's own), the body between, in paragraphs."""
    text = script("Why sourdough needs patience", platform, 60)
    hook, *body, cta = text.split("\n\n")
    assert hook.startswith("Hook: ") and "why sourdough needs patience" in hook
    assert body and not any("Hook:" in p or "Call to action:" in p for p in body)
    assert cta.startswith("Call to action: ")
    assert cta.removeprefix("Call to action: ") in mock_lines.CALLS_TO_ACTION[platform]


def test_youtube_long_form_has_numbered_chapters_that_the_hook_announces() -> None:
    """YouTube long-form: 'Chapter N: Title.' numbered from 1, the first chapters named in the hook."""
    text = script("Why sourdough needs patience", Platform.YOUTUBE, 600)
    chapters = re.findall(r"Chapter (\d+): ([^.]+)\.", text)
    assert [int(n) for n, _ in chapters] == list(range(1, len(chapters) + 1)) and len(chapters) >= 3
    plan = re.search(r"Here is the plan: ([^.]+)\.", text)
    assert plan is not None
    for _, title in chapters[:3]:
        assert title.lower() in plan.group(1)
    assert chapters[0][1] == "The basics" and chapters[-1][1] == "Putting it together"


def test_short_form_counts_its_points_and_youtube_chapters_only_on_youtube() -> None:
    """A one-minute TikTok counts out loud (First, Second); no platform but YouTube has chapters."""
    tiktok = script("Why sourdough needs patience", Platform.TIKTOK, 60)
    assert "First, " in tiktok and "Second, " in tiktok
    for platform in Platform:
        assert ("Chapter 1:" in script("coffee", platform, 120)) == (platform is Platform.YOUTUBE)


# ---------------------------------------------------------------- the topic, worked in properly


@pytest.mark.parametrize(
    ("topic", "shown", "not_shown"),
    [
        ("Why sourdough needs patience", "why sourdough needs patience", "Why sourdough needs patience"),
        ("How to brew pour-over coffee", "how to brew pour-over coffee", "How to brew"),
        ("Why does sourdough need patience?", "Why does sourdough need patience?", "patience?."),
        ("What is the best camera for beginners", "What is the best camera for beginners?", "“"),
        ("Is cold brew worth it", "Is cold brew worth it?", "“"),
        ("pour-over coffee!!!", "“pour-over coffee”", "!"),
        ("pour-over coffee.", "“pour-over coffee”", "coffee.”"),
        ('"Sourdough basics"', "“Sourdough basics”", '"'),
        ("“Sourdough basics”", "“Sourdough basics”", "““"),
        ("AI", "“AI”", "““"),
        ("Crème brûlée für Anfänger", "“Crème brûlée für Anfänger”", "Crème brûlée für Anfänger."),
        ("寿司の作り方", "“寿司の作り方”", "寿司の作り方."),
        ("¿Cómo hacer pan?", "¿Cómo hacer pan?", "“"),
        ("pour-over\n\n  coffee", "“pour-over coffee”", "pour-over\n"),
        ("{t} and {0} tips", "“{t} and {0} tips”", "““"),
    ],
)
def test_topic_is_worked_into_the_hook(topic: str, shown: str, not_shown: str) -> None:
    """Questions stay questions, how/why clauses read in the sentence, anything else is quoted, cleaned up."""
    for platform in Platform:
        text = script(topic, platform, 30)
        hook = text.split("\n\n")[0]
        assert shown in hook, (platform, hook)
        if shown.endswith("?"):  # a question is a sentence of its own
            assert shown in sentences(hook.removeprefix("Hook: ")), (platform, hook)
        assert not_shown not in text, (platform, hook)


def test_topic_is_named_even_in_the_shortest_script() -> None:
    """5 s (12 words): the topic still appears in the hook, shortened if it must be."""
    for platform in Platform:
        assert "why sourdough needs patience" in script("Why sourdough needs patience", platform, 5)
        assert "“AI”" in script("AI", platform, 5)
        assert "“The surprising" in script(TOPICS[-1], platform, 5)


def test_long_topic_is_shortened_in_the_hook() -> None:
    """A 500-character topic: its start quoted in the hook, cut at a clause boundary or with an ellipsis."""
    long_topic = ("The surprising history of sourdough bread, from ancient Egypt to the bakery down the street " * 6)[
        :500
    ].strip()
    text = script(long_topic, Platform.YOUTUBE, 120)
    assert "“The surprising history of sourdough bread”" in text
    assert "ancient Egypt" not in text
    unbroken = " ".join(["fermentation"] * 45)[:500]
    hook = script(unbroken, Platform.TIKTOK, 60).split("\n\n")[0]
    quoted = re.search(r"“([^”]+)”", hook)
    assert quoted is not None and quoted.group(1).endswith("…") and len(quoted.group(1)) <= 81


@pytest.mark.parametrize(
    ("raw", "kind", "words"),
    [
        ("Why sourdough needs patience", "clause", "Why sourdough needs patience"),
        ("how to brew coffee...", "clause", "how to brew coffee"),
        ("Why does sourdough need patience?!", "question", "Why does sourdough need patience"),
        ("What is sourdough", "question", "What is sourdough"),
        ("Should you learn Rust", "question", "Should you learn Rust"),
        ("«Café culture»", "phrase", "Café culture"),
        ('The "best" espresso', "phrase", 'The "best" espresso'),
        ("How", "phrase", "How"),
        ("???", "phrase", "???"),
    ],
)
def test_read_topic_table(raw: str, kind: str, words: str) -> None:
    """The kind of topic and its words without trailing punctuation or wrapping quotes."""
    topic = read_topic(raw)
    assert (topic.kind, " ".join(topic.words)) == (kind, words)


@pytest.mark.parametrize(
    ("raw", "max_words", "kind", "text"),
    [
        ("How to bake bread, step by step, for beginners", 7, "clause", "how to bake bread, step by step"),
        ("How to bake bread, step by step, for beginners", 4, "clause", "how to bake bread"),
        ("Bread — a history of everything", 4, "phrase", "“Bread”"),
        ("one two three four five six", 3, "phrase", "“one two three…”"),
        ("How do I start a podcast, with no time at all", 7, "question", "How do I start a podcast?"),
        ("x" * 200, 3, "phrase", "“" + "x" * 80 + "…”"),
    ],
)
def test_shorten_table(raw: str, max_words: int, kind: str, text: str) -> None:
    """A long topic is cut at its last clause boundary that fits, else with an ellipsis (then quoted)."""
    short = shorten(read_topic(raw), max_words)
    assert (short.kind, short.text()) == (kind, text)


# ---------------------------------------------------------------- the phrase banks


def test_banks_never_say_the_same_thing_twice() -> None:
    """Every line across the banks, hooks and calls to action is distinct, and each ends a sentence."""
    everything = [
        *(line for bank in mock_lines.BANKS.values() for line in bank),
        *(line for closers in mock_lines.CLOSERS.values() for line in closers),
        *mock_lines.CHAPTERS.values(),
        *mock_lines.QUESTION_FOLLOW_UPS,
        *(line for lines in mock_lines.OPENERS.values() for line in lines),
        *(line for lines in mock_lines.PROMISES.values() for line in lines),
    ]
    assert len(everything) == len(set(everything))
    assert all(line[-1] in ".!?" for line in everything)


def test_closers_have_their_length_and_tips_take_a_lead() -> None:
    """Closers are exactly as long as filed (the exact fit relies on it); tips and reasons can follow a lead."""
    for length, closers in mock_lines.CLOSERS.items():
        assert all(len(closer.split()) == length for closer in closers), length
    assert sorted(mock_lines.CLOSERS) == list(range(1, len(mock_lines.CLOSERS) + 1))
    for line in [*mock_lines.TIPS, *mock_lines.REASONS]:
        assert line.split()[0] not in {"I", "I'm", "I've"}, line
