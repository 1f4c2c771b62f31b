"""The mock provider: a deterministic, plausible script for any request, paced like a model."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

from streaming.protocol import Platform, ScriptRequest

_HOOKS = [
    "Stop scrolling: {topic} is easier than you think.",
    "Here is the one thing nobody tells you about {topic}.",
    "You are doing {topic} wrong, and it takes one minute to fix.",
    "Three seconds from now you will see {topic} differently.",
]
_BODY = [
    "First, start with the basics and keep it simple.",
    "Most people skip this step, and that is exactly why they struggle.",
    "Take a moment to notice what actually changes when you slow down.",
    "The secret is consistency, not perfection.",
    "Try it once today and compare the result with yesterday.",
    "Small details add up: measure, adjust and repeat.",
    "If it feels awkward at first, that means you are learning.",
    "Watch what happens when you give it your full attention.",
    "Here is a quick example you can copy right away.",
    "Keep your tools ready so nothing breaks your focus.",
    "Write down what worked, because memory is a poor notebook.",
    "Ask yourself what your audience needs to hear first.",
]
# Closers of 1 to 7 words, so a script reaches its estimated length on a sentence boundary.
_CLOSERS = [
    "Really.",
    "Try it.",
    "That is it.",
    "It really does work.",
    "Keep going, it gets easier.",
    "You will see the difference quickly.",
    "Give it one honest week and see.",
]
_CTA = {
    Platform.TIKTOK: "Follow for part two and tell me in the comments how it went.",
    Platform.YOUTUBE_SHORTS: "Subscribe for more quick tips like this one.",
    Platform.INSTAGRAM_REELS: "Save this reel and share it with a friend who needs it.",
    Platform.YOUTUBE: "If this helped, like the video, subscribe, and see you in the next one.",
    Platform.LINKEDIN: "What has your experience been? Share your thoughts in the comments.",
}


def mock_script(request: ScriptRequest) -> list[str]:
    """The script as words, each with the whitespace after it; about the estimated length."""
    seed = int.from_bytes(hashlib.sha256(f"{request.topic}|{request.platform}".encode()).digest()[:8], "big")
    rng = random.Random(seed)  # noqa: S311 - determinism, not security
    target = request.estimated_words
    parts = ["Hook:", rng.choice(_HOOKS).format(topic=request.topic)]
    if request.platform is Platform.YOUTUBE:
        parts.append("Chapter 1:")
    if request.audience:
        parts.append(f"This one is for {request.audience}.")
    cta = ["Call", "to", "action:", *_CTA[request.platform].split()]
    words = " ".join(parts).split()
    chapter = 2
    while len(words) + len(cta) < target:
        sentence = rng.choice(_BODY).split()
        room = target - len(cta) - len(words)
        if len(sentence) > room:
            # End on whole sentences: short closers fill the last few words exactly.
            sentence = _CLOSERS[min(room, len(_CLOSERS)) - 1].split()
        if request.platform is Platform.YOUTUBE and len(words) // 120 >= chapter and room > 10:
            words += ["Chapter", f"{chapter}:"]
            chapter += 1
        words += sentence
    words += cta
    return [word + " " for word in words[:-1]] + [words[-1]]


class MockScriptStream:
    """Yields the mock script word by word, MOCK_STREAM_DELAY_MS apart."""

    def __init__(self, words: list[str], delay_s: float) -> None:
        self._words = words
        self._delay_s = delay_s
        self._closed = False
        self.usage: dict[str, Any] = {}

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
        self.usage = {"prompt_tokens": 0, "completion_tokens": len(self._words), "total_tokens": len(self._words)}

    def __aiter__(self) -> AsyncIterator[str]:
        return self._generate()

    async def aclose(self) -> None:
        self._closed = True


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
