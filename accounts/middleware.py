"""Socket authentication: a SimpleJWT access token from the query, the subprotocol or the header."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings

from accounts.credentials import Credential, verdict
from accounts.revocation import account_of
from accounts.users import load_holder
from accounts.verified import verified_credential
from streaming.protocol import BEARER_PREFIX, SUBPROTOCOL, AuthCause

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


@dataclass(frozen=True, slots=True)
class SocketAuth:
    """Who a socket is, and the claims of the token it holds (kept on the scope for the socket's whole life)."""

    user: Any
    credential: Credential


async def authenticate(raw: str) -> SocketAuth | AuthCause:
    """SimpleJWT validates the token (signature, expiry, access type); then its account and login must still hold:
    the user exists and is active, the password is the one it was issued under, its login was not signed out."""
    try:
        credential = verified_credential(raw)
    except ExpiredTokenError:
        logger.info("socket authentication refused: %s", AuthCause.TOKEN_EXPIRED)
        return AuthCause.TOKEN_EXPIRED
    except (TokenError, KeyError, TypeError, ValueError) as exc:
        # The reason, never the token: tokens stay out of logs.
        logger.info("socket authentication refused: %s", type(exc).__name__)
        return AuthCause.TOKEN_INVALID
    user, login = await load_holder(credential.user_id, credential.login_id)
    account = account_of(user) if user is not None else None
    cause = verdict(credential, account, login, check_password=api_settings.CHECK_REVOKE_TOKEN)
    if cause is not None:
        logger.info("socket authentication refused: %s", "unknown user" if user is None else cause)
        return cause
    return SocketAuth(user, credential)


class JWTAuthMiddleware:
    """Sets scope["user"] (AnonymousUser when the token is missing or bad), scope["cn_credential"] (the token's
    claims, for the socket's lifetime and revocation) and the subprotocol to answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        # This frame lives as long as the socket: it keeps its arguments, not the raw token or what it decoded.
        return await self.inner(await authenticated(scope), receive, send)


async def authenticated(scope: Scope) -> Scope:
    """A copy of `scope` with the socket's user, credential and subprotocol to answer."""
    raw, answer = token_from_scope(scope)
    outcome = await authenticate(raw) if raw else None
    if isinstance(outcome, SocketAuth):
        user, credential = outcome.user, outcome.credential
    else:
        user, credential = AnonymousUser(), None
    return {**scope, "user": user, "cn_credential": credential, "cn_subprotocol": answer}


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


__all__ = ["JWTAuthMiddleware", "SocketAuth", "authenticate", "origin_checked", "token_from_scope"]
