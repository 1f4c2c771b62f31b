"""Socket authentication: a SimpleJWT access token from the query, the subprotocol or the header."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.users import user_loader
from streaming.protocol import BEARER_PREFIX, SUBPROTOCOL

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


def token_from_scope(scope: Scope) -> tuple[str | None, str | None]:
    """(access token, subprotocol to answer); first match wins: ?token=, subprotocol, Authorization.

    With WS_ALLOW_QUERY_TOKEN off, ?token= is ignored: only the subprotocol and the header carry a token.
    """
    offered = [str(p) for p in scope.get("subprotocols") or []]
    answer = SUBPROTOCOL if SUBPROTOCOL in offered else None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        if settings.WS_ALLOW_QUERY_TOKEN:
            return query["token"][0], answer
        logger.info("socket authentication: ?token= ignored (WS_ALLOW_QUERY_TOKEN is off)")
    for protocol in offered:
        if protocol.startswith(BEARER_PREFIX):
            return protocol[len(BEARER_PREFIX) :], answer
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip(), answer
    return None, answer


async def user_for_token(raw: str) -> Any:
    """SimpleJWT validates the token (signature, expiry, access type); the user must exist and be active."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]  # SimpleJWT accepts str at runtime
        user_id = token[api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError) as exc:
        # The reason, never the token: tokens stay out of logs.
        logger.info("socket authentication refused: %s", type(exc).__name__)
        return AnonymousUser()
    user = await user_loader().load(user_id)
    if user is None or (api_settings.CHECK_USER_IS_ACTIVE and not user.is_active):
        logger.info("socket authentication refused: %s", "unknown user" if user is None else "inactive user")
        return AnonymousUser()
    if api_settings.CHECK_REVOKE_TOKEN and token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
        user.password
    ):
        logger.info("socket authentication refused: token revoked by a password change")
        return AnonymousUser()
    return user


class JWTAuthMiddleware:
    """Sets scope["user"] (AnonymousUser when the token is missing or bad) and the subprotocol to answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        raw, answer = token_from_scope(scope)
        user = await user_for_token(raw) if raw else AnonymousUser()
        scope = {**scope, "user": user, "cn_subprotocol": answer}
        return await self.inner(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Browsers must come from an allowed origin; clients that send no Origin (CLI, mobile, servers) may connect."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))

    def validate_origin(self, parsed_origin: Any) -> bool:
        # Read at call time, like every other setting, so a changed WS_ALLOWED_ORIGINS applies without a re-import.
        return any(pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in allowed_origins())


def allowed_origins() -> list[str]:
    return settings.WS_ALLOWED_ORIGINS or list(settings.ALLOWED_HOSTS)


def origin_checked(application: Any) -> BrowserOriginValidator:
    return BrowserOriginValidator(application, allowed_origins())


__all__ = ["JWTAuthMiddleware", "origin_checked", "token_from_scope"]
