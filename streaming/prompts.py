"""The system and user prompts that ask a chat model for a spoken video script."""

from __future__ import annotations

from streaming.protocol import SPOKEN_WORDS_PER_MINUTE, Platform, ScriptRequest

# What each platform's audience expects; the model knows the platforms, these keep it on their conventions.
PLATFORM_CONVENTIONS = {
    Platform.TIKTOK: (
        "TikTok short-form video: hook the viewer in the first two seconds with a bold line, "
        "keep sentences short and punchy, and keep the energy up to the end."
    ),
    Platform.YOUTUBE_SHORTS: (
        "YouTube Shorts vertical video: hook the viewer in the first two seconds, "
        "deliver one clear idea fast, and end with a reason to subscribe."
    ),
    Platform.INSTAGRAM_REELS: (
        "Instagram Reels short-form video: hook the viewer in the first two seconds, "
        "keep it visual and relatable, and end with a reason to save or share."
    ),
    Platform.YOUTUBE: (
        "YouTube long-form video: open with a hook that promises what the viewer will learn, "
        "then organise the body into chapters, each introduced aloud as 'Chapter N:' followed by its title."
    ),
    Platform.LINKEDIN: (
        "LinkedIn video for professionals: keep a professional, credible tone, open with a concrete insight, "
        "back it with an example or a number, and avoid slang and hype."
    ),
}

PLATFORM_NAMES = {
    Platform.TIKTOK: "TikTok",
    Platform.YOUTUBE_SHORTS: "YouTube Shorts",
    Platform.INSTAGRAM_REELS: "Instagram Reels",
    Platform.YOUTUBE: "YouTube",
    Platform.LINKEDIN: "LinkedIn",
}

SYSTEM_PROMPT = (
    "You write scripts for video creators. A script is read aloud exactly as you write it, so write plain "
    "spoken text only: no markdown, no headings, no bullet points, no emojis, no stage directions, no camera "
    "or b-roll notes, no speaker labels, no text in brackets or parentheses. "
    "Structure every script as a hook, a body and a call to action, flowing as natural speech. "
    f"People speak about {SPOKEN_WORDS_PER_MINUTE} words per minute: match the requested length closely. "
    "Follow the platform's conventions. Answer with the script and nothing else."
)


def build_messages(request: ScriptRequest) -> list[dict[str, str]]:
    """The chat messages (system, then user) asking for this request's script."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _user_prompt(request)},
    ]


def _user_prompt(request: ScriptRequest) -> str:
    lines = [
        f"Write a {PLATFORM_NAMES[request.platform]} video script about: {request.topic}",
        f"Length: {_duration(request.duration)} spoken, about {request.estimated_words} words.",
        f"Platform conventions: {PLATFORM_CONVENTIONS[request.platform]}",
    ]
    if request.tone:
        lines.append(f"Tone: {request.tone}")
    if request.audience:
        lines.append(f"Audience: {request.audience}")
    lines.append("Start with the hook, then the body, and finish with a call to action.")
    return "\n".join(lines)


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} seconds"
    text = f"{minutes} minute" + ("s" if minutes > 1 else "")
    return f"{text} {rest} seconds" if rest else text
