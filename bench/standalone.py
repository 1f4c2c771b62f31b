"""What a measurement needs to run the product's code in its own process, without a server: the project on the
path, Django's settings module, and throwaway keys (nothing is signed there) so the production settings load.
Imported first, before anything loads Django."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatornexus.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("JWT_SECRET", secrets.token_urlsafe(50))
