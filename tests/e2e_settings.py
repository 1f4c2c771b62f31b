"""Settings of server processes the tests start: the product's, plus test-only routes and cheap password hashes."""

from creatornexus.settings import *  # noqa: F403

# Test users are saved with MD5 (tests/conftest.py: fast_password_hashing); the product's default stays accepted.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# The product's routes plus the test-only ones (tests/e2e_urls.py); the product's settings cannot route them.
ROOT_URLCONF = "tests.e2e_urls"
