"""Access tokens this process has verified: a token several sockets present (a user's tabs, a reconnect) is
decoded and its signature checked once, not at every handshake; its expiry is still checked at every use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.credentials import Credential

# A storm of distinct tokens fits; past it the oldest is forgotten (and verified again if it comes back).
REMEMBERED_MAX = 4096


class VerifiedTokens:
    """Raw access token -> the claims `decode` verified, while unexpired. Refused tokens are never remembered."""

    def __init__(self, decode: Callable[[str], Credential], most: int = REMEMBERED_MAX) -> None:
        self._decode = decode
        self._most = most
        self._known: dict[str, Credential] = {}

    def credential(self, raw: str, now: float) -> Credential:
        """The token's claims, or the exception `decode` raises for it (an expired one is decoded again)."""
        known = self._known.get(raw)
        if known is not None and not known.expired(now):
            return known
        self._known.pop(raw, None)
        credential = self._decode(raw)
        self._known[raw] = credential
        if len(self._known) > self._most:
            del self._known[next(iter(self._known))]  # the oldest: dicts keep insertion order
        return credential

    def clear(self) -> None:
        self._known.clear()


def decode_access(raw: str) -> Credential:
    """SimpleJWT's checks (signature, expiry, token type); its TokenError, KeyError... for a token it refuses."""
    token = AccessToken(raw)  # type: ignore[arg-type]  # SimpleJWT accepts str at runtime
    return Credential.of(token.payload, api_settings.USER_ID_CLAIM, api_settings.REVOKE_TOKEN_CLAIM)


_verified = VerifiedTokens(decode_access)


def verified_credential(raw: str) -> Credential:
    return _verified.credential(raw, time.time())


@receiver(setting_changed)
def _forget_on_new_keys(*, setting: str, **_: Any) -> None:
    """Tokens verified under other keys or rules (tests override settings) are verified again."""
    if setting in {"SIMPLE_JWT", "SECRET_KEY"}:
        _verified.clear()
