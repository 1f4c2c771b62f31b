"""VerifiedTokens: a token is decoded once while unexpired; expired, refused or forgotten ones are decoded again."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError

from accounts.credentials import Credential
from accounts.verified import VerifiedTokens


class Decoder:
    """Stands in for SimpleJWT: counts decodes; tokens named 'bad' are refused, 'old' ones expired."""

    def __init__(self) -> None:
        self.decoded: list[str] = []

    def __call__(self, raw: str) -> Credential:
        self.decoded.append(raw)
        if raw.startswith("bad"):
            raise TokenError("Token is invalid")
        if raw.startswith("old"):
            raise ExpiredTokenError("Token is expired")
        return Credential(user_id="7", expires_at=100.0, issued_at=0.0, login_id=None, password_digest=None)


def test_a_token_presented_again_is_decoded_once() -> None:
    """Four sockets with one token: one decode, the same claims each time."""
    decoder = Decoder()
    tokens = VerifiedTokens(decoder)
    assert len({tokens.credential("tab", now=10.0) for _ in range(4)}) == 1
    assert decoder.decoded == ["tab"]


def test_an_expired_token_is_decoded_again() -> None:
    """At its expiry a remembered token goes back to SimpleJWT, which says whether it still holds."""
    decoder = Decoder()
    tokens = VerifiedTokens(decoder)
    tokens.credential("tab", now=10.0)
    tokens.credential("tab", now=100.0)
    assert decoder.decoded == ["tab", "tab"]


def test_a_refused_token_is_never_remembered() -> None:
    """Each presentation of a refused token is decoded (and refused) again."""
    decoder = Decoder()
    tokens = VerifiedTokens(decoder)
    for raw, error in (("bad", TokenError), ("bad", TokenError), ("old", ExpiredTokenError)):
        with pytest.raises(error):
            tokens.credential(raw, now=10.0)
    assert decoder.decoded == ["bad", "bad", "old"]


def test_the_oldest_token_is_forgotten_past_the_bound() -> None:
    """Bound 2: a third token pushes the first out; it is decoded again when it comes back."""
    decoder = Decoder()
    tokens = VerifiedTokens(decoder, most=2)
    for raw in ("a", "b", "c", "b", "a"):
        tokens.credential(raw, now=10.0)
    assert decoder.decoded == ["a", "b", "c", "a"]


def test_clear_forgets_every_token() -> None:
    decoder = Decoder()
    tokens = VerifiedTokens(decoder)
    tokens.credential("tab", now=10.0)
    tokens.clear()
    tokens.credential("tab", now=10.0)
    assert decoder.decoded == ["tab", "tab"]
