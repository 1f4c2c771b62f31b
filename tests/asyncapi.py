"""Frames against docs/asyncapi.yaml: every frame a test client receives is checked with its message schema.

FrameClient.recv (tests/wsclient.py) calls `check_server_frame`, so a frame the document does not describe, or
describes otherwise, fails the test that received it with its type and the path of the offending field. The
schemas are the AsyncAPI document's own (JSON Schema draft 7); formats (uuid, date-time) are checked on real
frames, not on the examples of docs/protocol.md, which shorten ids.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
SERVER_OPERATION = "sendServerFrames"
CLIENT_OPERATION = "receiveClientFrames"
HOW_TO_ADD = (
    "add a schema under components.schemas with `type: {{const: {kind}}}`, a message under components.messages "
    "pointing at it, and list that message in channels.stream.messages and operations.{operation}.messages"
)


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return document


def resolve(node: Any) -> Any:
    """Follow local $refs ("#/a/b") until a node that is not one."""
    while isinstance(node, dict) and set(node) == {"$ref"}:
        node = _at(node["$ref"])
    return node


def _at(ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are followed, not {ref}"
    node: Any = asyncapi_document()
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@dataclass(frozen=True)
class MessageSchema:
    """One message of an operation: its key under components.messages and its frame type."""

    key: str
    kind: str

    @property
    def where(self) -> str:
        return f"components.messages.{self.key}"

    def validator(self, *, formats: bool) -> Draft7Validator:
        return _validator(self.key, formats)


def inline(node: Any) -> Any:
    """A copy with every local $ref replaced by what it points at (the document has no recursive schema)."""
    node = resolve(node)
    if isinstance(node, dict):
        return {key: inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value) for value in node]
    return node


@functools.cache
def _validator(key: str, formats: bool) -> Draft7Validator:
    """A message's payload schema, references inlined: no lookups per frame (every word of every test passes here)."""
    schema = inline(asyncapi_document()["components"]["messages"][key]["payload"])
    return Draft7Validator(schema, format_checker=FormatChecker() if formats else None)


@functools.cache
def messages_of(operation: str) -> dict[str, MessageSchema]:
    """Frame type -> its message, for the messages an operation lists."""
    found: dict[str, MessageSchema] = {}
    for ref in asyncapi_document()["operations"][operation]["messages"]:
        channel_message = _at(ref["$ref"])
        key = channel_message["$ref"].rsplit("/", 1)[-1]
        payload = resolve(resolve(channel_message)["payload"])
        kind = payload["properties"]["type"]["const"]
        assert kind not in found, f"operations.{operation} lists two messages of type {kind!r}"
        found[kind] = MessageSchema(key, kind)
    return found


def problems(frame: Any, message: MessageSchema, *, formats: bool = True) -> list[str]:
    """Each way the frame is off its message schema: the JSON path of the field and what is wrong."""
    errors = sorted(message.validator(formats=formats).iter_errors(frame), key=lambda error: list(error.path))
    return [_describe(error) for error in errors]


def _describe(error: ValidationError) -> str:
    if error.context:  # oneOf/anyOf: the branch that came closest says more than "not valid under any"
        deepest = max(error.context, key=lambda sub: len(sub.path))
        return f"{deepest.json_path}: {deepest.message}"
    return f"{error.json_path}: {error.message}"


def _shown(frame: Any) -> str:
    text = orjson.dumps(frame).decode()
    return text if len(text) <= 300 else text[:300] + "…"


def check_server_frame(frame: Any) -> None:
    """Fail unless docs/asyncapi.yaml describes this frame as one the server sends."""
    kind = frame.get("type") if isinstance(frame, dict) else None
    message = messages_of(SERVER_OPERATION).get(kind) if isinstance(kind, str) else None
    if message is None:
        raise AssertionError(
            f"server frame of type {kind!r} is not in docs/asyncapi.yaml: "
            + HOW_TO_ADD.format(kind=kind, operation=SERVER_OPERATION)
            + f". Frame: {_shown(frame)}"
        )
    found = problems(frame, message)
    if found:
        raise AssertionError(
            f"server frame {kind!r} does not match docs/asyncapi.yaml {message.where}: "
            + "; ".join(found)
            + f". Frame: {_shown(frame)}"
        )


# ---------------------------------------------------------------- docs/protocol.md's examples


@dataclass(frozen=True)
class Example:
    """One frame of a fenced json block of docs/protocol.md, and which way it travels if a comment says so."""

    line: int
    frame: Any
    direction: str | None  # "client" (client -> server), "server", or None when the block does not say

    @property
    def name(self) -> str:
        kind = self.frame.get("type") if isinstance(self.frame, dict) else None
        return f"protocol.md:{self.line}:{kind}"


_FENCE = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
_COMMENT = re.compile(r"(?<=\})[ \t]*//(.*)$", re.MULTILINE)
_ELISION = re.compile(r"^[ \t]*…[ \t]*$", re.MULTILINE)


def protocol_examples(text: str) -> list[Example]:
    """Every JSON object of every ```json block; a line of `…` elides frames, `// a -> b` says the direction."""
    examples = []
    for block in _FENCE.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        body = _ELISION.sub("", block.group(1))
        # Comments become spaces, so offsets in `json` are offsets in `body`.
        json = _COMMENT.sub(lambda match: " " * len(match.group(0)), body)
        for start, end in _object_spans(json):
            rest_of_line = body[end : body.find("\n", end)]
            direction = "client" if "client ->" in rest_of_line else "server" if "server ->" in rest_of_line else None
            line = first_line + body.count("\n", 0, start)
            try:
                frame = orjson.loads(json[start:end])
            except orjson.JSONDecodeError as exc:
                raise AssertionError(f"docs/protocol.md line {line}: not JSON ({exc})") from None
            examples.append(Example(line, frame, direction))
    return examples


def _object_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each top-level JSON object in text, found by brace depth outside strings."""
    spans, depth, start, in_string, escaped = [], 0, 0, False, False
    for at, char in enumerate(text):
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == "{":
            start = at if depth == 0 else start
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                spans.append((start, at + 1))
        elif depth == 0 and not char.isspace():
            raise AssertionError(f"text outside a JSON object in a json block: {text[at : at + 40]!r}")
    assert depth == 0, "a json block ends inside an object"
    return spans


def check_example(example: Example) -> None:
    """Fail unless a message of the document, in the direction the example travels, validates it."""
    operations = {"server": [SERVER_OPERATION], "client": [CLIENT_OPERATION]}.get(
        example.direction or "", [SERVER_OPERATION, CLIENT_OPERATION]
    )
    kind = example.frame.get("type")
    candidates = [messages_of(op)[kind] for op in operations if kind in messages_of(op)]
    assert candidates, f"{example.name}: no message of type {kind!r} in docs/asyncapi.yaml: " + HOW_TO_ADD.format(
        kind=kind, operation=" or ".join(operations)
    )
    reports = {c.where: problems(example.frame, c, formats=False) for c in candidates}
    if all(reports.values()):
        detail = " | ".join(f"{where}: {'; '.join(found)}" for where, found in reports.items())
        raise AssertionError(f"{example.name} does not match docs/asyncapi.yaml: {detail}")
