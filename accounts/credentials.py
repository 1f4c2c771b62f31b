"""What a socket's access token says, what the database says about its account and login, and the rule between them.

Pure data and one pure function, so every case of revocation is a unit test without I/O (tests/test_credentials.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streaming.protocol import AuthCause

# Claim of every refresh token signed in through /api/auth/token/, kept across rotations and copied into every
# access token minted from them (SimpleJWT copies custom claims): which login a token belongs to.
LOGIN_ID_CLAIM = "login_id"


@dataclass(frozen=True, slots=True)
class Credential:
    """A validated access token's claims that matter for a socket's whole life (never the token itself)."""

    user_id: str
    expires_at: float  # exp, epoch seconds
    issued_at: float  # iat, epoch seconds (whole seconds)
    login_id: str | None  # None for tokens minted outside sign-in (management code, tests)
    password_digest: str | None  # SimpleJWT's revoke claim: a digest of the password hash it was issued under

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    @classmethod
    def of(cls, payload: dict[str, Any], user_id_claim: str, revoke_claim: str) -> Credential:
        """From a token payload SimpleJWT has verified (signature, type, expiry); KeyError if a claim is missing."""
        login_id = payload.get(LOGIN_ID_CLAIM)
        digest = payload.get(revoke_claim)
        return cls(
            user_id=str(payload[user_id_claim]),
            expires_at=float(payload["exp"]),
            issued_at=float(payload["iat"]),
            login_id=str(login_id) if login_id else None,
            password_digest=str(digest) if digest else None,
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the database says about a user, as far as tokens are concerned."""

    is_active: bool
    password_digest: str
    # Tokens issued before this instant (epoch seconds) no longer authenticate: sign-out everywhere, operator.
    not_before: float | None = None
    not_before_cause: AuthCause | None = None


@dataclass(frozen=True, slots=True)
class LoginState:
    """One sign-in as the database holds it."""

    created_at: float  # epoch seconds, exact (a token's iat is whole seconds)
    ended_cause: AuthCause | None = None


def verdict(
    credential: Credential, account: AccountState | None, login: LoginState | None, *, check_password: bool = True
) -> AuthCause | None:
    """Why this credential no longer holds, or None while it does (expiry is the caller's business).

    A token's issue time is its login's exact creation time when the login is known, else its iat (whole seconds,
    so a token minted in the very second of a cut-off counts as before it: refused rather than let through).
    """
    if account is None or not account.is_active:
        return AuthCause.DEACTIVATED
    if check_password and credential.password_digest != account.password_digest:
        return AuthCause.PASSWORD_CHANGED
    if login is not None and login.ended_cause is not None:
        return login.ended_cause
    issued_at = login.created_at if login is not None else credential.issued_at
    if account.not_before is not None and issued_at < account.not_before:
        return account.not_before_cause or AuthCause.SIGNED_OUT_EVERYWHERE
    return None
