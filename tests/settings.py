"""Settings of the test run: the product's, with production's defaults (DEBUG off) and keys made for this run.

The keys go into the environment, so the servers the tests start (tests/servers.py) inherit them and accept
the tokens this process signs. Nothing here is a key from the repository.
"""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("JWT_SECRET", secrets.token_urlsafe(50))
# Test servers speak plain HTTP on 127.0.0.1; the other HTTPS settings keep their production defaults.
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")

from creatornexus.settings import *  # noqa: F403
