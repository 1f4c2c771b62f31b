"""build_messages: platform conventions, length target, structure, tone and audience in the prompt."""

from __future__ import annotations

import pytest

from streaming.prompts import build_messages
from streaming.protocol import Platform, ScriptRequest


def prompt(
    platform: Platform = Platform.TIKTOK,
    duration: int = 60,
    topic: str = "cold brew coffee",
    tone: str = "",
    audience: str = "",
) -> tuple[str, str]:
    request = ScriptRequest(topic=topic, platform=platform, duration=duration, tone=tone, audience=audience)
    system, user = build_messages(request)
    assert (system["role"], user["role"]) == ("system", "user")
    return system["content"], user["content"]


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform.TIKTOK, "first two seconds"),
        (Platform.YOUTUBE_SHORTS, "first two seconds"),
        (Platform.INSTAGRAM_REELS, "first two seconds"),
        (Platform.YOUTUBE, "chapters"),
        (Platform.LINKEDIN, "professional"),
    ],
)
def test_platform_convention(platform: Platform, expected: str) -> None:
    """Each platform's convention reaches the user prompt."""
    _, user = prompt(platform=platform)
    assert expected in user


@pytest.mark.parametrize(
    ("duration", "length"),
    [
        (30, "30 seconds spoken, about 75 words"),
        (60, "1 minute spoken, about 150 words"),
        (90, "1 minute 30 seconds spoken, about 225 words"),
        (600, "10 minutes spoken, about 1500 words"),
    ],
)
def test_length_target(duration: int, length: str) -> None:
    """The target length is the duration at about 150 spoken words per minute."""
    _, user = prompt(duration=duration, platform=Platform.YOUTUBE)
    assert length in user


@pytest.mark.parametrize(
    "rule",
    ["no markdown", "no stage directions", "hook, a body and a call to action", "150 words per minute"],
)
def test_system_prompt_rules(rule: str) -> None:
    """The system prompt asks for plain spoken text in hook/body/call-to-action form at 150 wpm."""
    system, _ = prompt()
    assert rule in system


@pytest.mark.parametrize(
    ("tone", "audience", "present", "absent"),
    [
        ("playful", "night-shift nurses", ["Tone: playful", "Audience: night-shift nurses"], []),
        ("calm", "", ["Tone: calm"], ["Audience:"]),
        ("", "", [], ["Tone:", "Audience:"]),
    ],
)
def test_tone_and_audience(tone: str, audience: str, present: list[str], absent: list[str]) -> None:
    """Tone and audience appear only when given."""
    _, user = prompt(tone=tone, audience=audience)
    assert all(text in user for text in present)
    assert not any(text in user for text in absent)


def test_topic_in_user_prompt() -> None:
    """The topic is in the user prompt, not the system prompt."""
    system, user = prompt(topic="sourdough for beginners")
    assert "sourdough for beginners" in user
    assert "sourdough" not in system
