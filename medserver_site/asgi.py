"""The ASGI application Daphne serves: HTTP pages and the chat WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medserver_site.settings")
django_http = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402
from medserver_site.static_files import StaticFilesApp  # noqa: E402
from medserver_site.websocket_origin import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are few and small (no build step); serving them from the
        # same process keeps MedServer a single command with no web server to set up.
        # They go gzipped and cached (medserver_site.static_files).
        "http": StaticFilesApp(django_http),
        # Only this server's own pages, checked as CSRF checks a form's origin.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
