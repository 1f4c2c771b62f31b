"""Summarise a py-spy raw profile (`bench.run --profile DIR` writes one per server): where the event loop's time goes.

    .venv/bin/python -m bench.profile_summary DIR/stream-redis.txt [--top 25] [--match runner.,pacer.]

Samples of the event loop (stacks not rooted in a worker thread) are split three ways: by package of the
innermost frame (self time), by function anywhere in the stack (inclusive time), and, with --match, the share
of samples whose stack holds each given substring. py-spy drops idle samples, so the total over the recording's
length is how busy the loop was.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "func (path/to/file.py:123)"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
WORKER_ROOT = "Thread._bootstrap"


def parse(path: Path) -> tuple[list[tuple[list[str], int]], int]:
    """(event-loop stacks with their counts, samples in worker threads)."""
    stacks: list[tuple[list[str], int]] = []
    workers = 0
    for line in path.read_text(errors="replace").splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        frames = head.split(";")
        if frames[0].startswith("process "):  # recorded with --subprocesses: the process is the first frame
            frames = frames[1:] or frames
        if frames[0].startswith(WORKER_ROOT):
            workers += int(count)
        else:
            stacks.append((frames, int(count)))
    return stacks, workers


def package(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    parts = file.split("/")
    if parts[0] == "streaming":
        return "/".join(parts[:2]).removesuffix(".py")
    if len(parts) == 1:
        return f"stdlib:{parts[0].removesuffix('.py')}"
    return parts[0] if parts[0] != "asyncio" else "asyncio"


def function(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['func']} ({match['file']})"


def summary(path: Path, top: int, needles: list[str]) -> str:
    stacks, workers = parse(path)
    total = sum(count for _, count in stacks) or 1
    self_by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    for frames, count in stacks:
        self_by_package[package(frames[-1])] += count
        for name in {function(frame) for frame in frames}:
            inclusive[name] += count
        for needle in needles:
            if any(needle in frame for frame in frames):
                matched[needle] += count
    lines = [f"{path.name}: {total} event-loop samples, {workers} in worker threads"]
    lines.append("self time by package:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_by_package.most_common(top)]
    lines.append("inclusive time by function:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    if needles:
        lines.append("stacks holding:")
        lines += [f"  {100 * matched[needle] / total:5.1f}%  {needle}" for needle in needles]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="comma list of substrings to count stacks for")
    args = parser.parse_args()
    needles = [n for n in args.match.split(",") if n]
    print("\n\n".join(summary(path, args.top, needles) for path in args.profiles))


if __name__ == "__main__":
    main()
