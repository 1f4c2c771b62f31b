"""The Daphne shim: autobahn formats nothing per frame once it is installed (the ASGI entry point installs it)."""

from __future__ import annotations

from autobahn.websocket import protocol as autobahn_protocol

import creatornexus.asgi  # noqa: F401 - installs the shim, as every server process does
from streaming import daphne_compat


def test_frames_are_sent_without_colouring_log_arguments() -> None:
    """sendData's debug-log arguments are passed as they are: no click.style call per frame written."""
    marker = object()
    assert autobahn_protocol.hltype(marker) is marker
    assert autobahn_protocol.hlval(marker) is marker


def test_install_twice_changes_nothing() -> None:
    daphne_compat.install()
    assert autobahn_protocol.hlval(3) == 3
