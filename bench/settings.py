"""The product's settings for benchmark servers, changed in one way: a fast password hasher.

Bench users log in once each through POST /api/auth/token/; with the production PBKDF2 hasher (0.35 s of the
one server core per login) fetching tokens for a few hundred users would take minutes. No scenario measures
logins: socket authentication is JWT validation plus a user lookup, which this does not touch.
"""

from creatornexus.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
