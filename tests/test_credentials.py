"""The revocation rule without I/O: which credential still holds against its account and login, and why not."""

from __future__ import annotations

import pytest

from accounts.credentials import LOGIN_ID_CLAIM, AccountState, Credential, LoginState, verdict
from streaming.protocol import AuthCause

T = 1_795_000_000.0  # a token's iat: whole seconds
TOKEN = Credential(user_id="7", expires_at=T + 900, issued_at=T, login_id="L1", password_digest="pw1")
NO_LOGIN = Credential(user_id="7", expires_at=T + 900, issued_at=T, login_id=None, password_digest="pw1")
ACTIVE = AccountState(is_active=True, password_digest="pw1")
OPEN_LOGIN = LoginState(created_at=T + 0.4)


def cut(at: float, cause: AuthCause = AuthCause.SIGNED_OUT_EVERYWHERE) -> AccountState:
    return AccountState(is_active=True, password_digest="pw1", not_before=at, not_before_cause=cause)


CASES = [
    ("holds", TOKEN, ACTIVE, OPEN_LOGIN, None),
    ("holds without a login", NO_LOGIN, ACTIVE, None, None),
    ("user deleted", TOKEN, None, OPEN_LOGIN, AuthCause.DEACTIVATED),
    ("user deactivated", TOKEN, AccountState(False, "pw1"), OPEN_LOGIN, AuthCause.DEACTIVATED),
    ("deactivated beats a new password", TOKEN, AccountState(False, "pw2"), OPEN_LOGIN, AuthCause.DEACTIVATED),
    ("password changed", TOKEN, AccountState(True, "pw2"), OPEN_LOGIN, AuthCause.PASSWORD_CHANGED),
    (
        "token from before the revoke claim",
        Credential("7", T + 9, T, None, None),
        ACTIVE,
        None,
        AuthCause.PASSWORD_CHANGED,
    ),
    ("login signed out", TOKEN, ACTIVE, LoginState(T, AuthCause.LOGGED_OUT), AuthCause.LOGGED_OUT),
    (
        "login ended by an operator",
        TOKEN,
        ACTIVE,
        LoginState(T, AuthCause.CLOSED_BY_OPERATOR),
        AuthCause.CLOSED_BY_OPERATOR,
    ),
    ("login began before the cut-off", TOKEN, cut(T + 0.5), OPEN_LOGIN, AuthCause.SIGNED_OUT_EVERYWHERE),
    ("login began after the cut-off, same second", TOKEN, cut(T + 0.3), OPEN_LOGIN, None),
    (
        "operator's cut-off says so",
        TOKEN,
        cut(T + 5, AuthCause.CLOSED_BY_OPERATOR),
        OPEN_LOGIN,
        AuthCause.CLOSED_BY_OPERATOR,
    ),
    ("no login: iat before the cut-off", NO_LOGIN, cut(T + 0.5), None, AuthCause.SIGNED_OUT_EVERYWHERE),
    (
        "no login: iat in the cut-off's second counts as before",
        NO_LOGIN,
        cut(T + 0.01),
        None,
        AuthCause.SIGNED_OUT_EVERYWHERE,
    ),
    ("no login: iat at the cut-off holds", NO_LOGIN, cut(T), None, None),
    ("unknown login id: iat decides", TOKEN, cut(T + 0.5), None, AuthCause.SIGNED_OUT_EVERYWHERE),
]


@pytest.mark.parametrize(("name", "credential", "account", "login", "expected"), CASES, ids=[c[0] for c in CASES])
def test_verdict(
    name: str, credential: Credential, account: AccountState | None, login: LoginState | None, expected: AuthCause
) -> None:
    """Each case: the cause that ends the credential, or None while it holds."""
    assert verdict(credential, account, login) is expected


def test_password_check_can_be_off() -> None:
    """With SimpleJWT's CHECK_REVOKE_TOKEN off, a token without the claim holds."""
    bare = Credential("7", T + 9, T, None, None)
    assert verdict(bare, ACTIVE, None, check_password=False) is None


@pytest.mark.parametrize(("now", "expired"), [(T + 899.9, False), (T + 900, True), (T + 901, True)])
def test_expiry_is_exp_itself(now: float, expired: bool) -> None:
    """A credential is expired from its exp on, not a moment later."""
    assert TOKEN.expired(now) is expired


def test_credential_from_claims() -> None:
    """The claims a socket keeps, read from a verified payload; the login id is optional."""
    payload = {"user_id": 7, "exp": 10, "iat": 1, LOGIN_ID_CLAIM: "L1", "hash_password": "pw1", "jti": "j"}
    assert Credential.of(payload, "user_id", "hash_password") == Credential("7", 10.0, 1.0, "L1", "pw1")
    bare = {"user_id": "7", "exp": 10, "iat": 1}
    assert Credential.of(bare, "user_id", "hash_password") == Credential("7", 10.0, 1.0, None, None)
    with pytest.raises(KeyError):
        Credential.of({"exp": 10, "iat": 1}, "user_id", "hash_password")
