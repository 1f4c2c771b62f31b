"""ASGI entry point: Django's HTTP app first (it sets Django up), then the WebSocket routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatornexus.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.middleware import JWTAuthMiddleware, origin_checked  # noqa: E402
from creatornexus import redact  # noqa: E402
from streaming import asyncio_compat, daphne_compat, drain, uvicorn_compat  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402

daphne_compat.install()  # close codes 1001/1012, close reasons, bounded buffers (a no-op under other servers)
asyncio_compat.install()  # a closed socket's transport is not left to the cycle collector
uvicorn_compat.install()  # a text frame written at once (a no-op under other servers)
redact.route_daphne_access_log()  # Daphne's access log goes through logging, so tokens in URLs are redacted

# The first call takes over SIGTERM/SIGINT so a stopping server drains first (streaming/drain.py).
application = drain.on_signals(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": origin_checked(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
        }
    )
)
