"""Django settings for MedServer.

Every value a person can change comes from `medserver_site.config.ServerConfig`
(flags of the `medserver` CLI, or MEDSERVER_* variables for `manage.py`), read
here once. Everything else is a fixed choice, explained next to it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from medserver_site.config import ServerConfig
from medserver_site.dotenv import load_env_files
from medserver_site.network import allowed_hosts_for
from medserver_site.time_zone import system_time_zone

BASE_DIR = Path(__file__).resolve().parent.parent

load_env_files(BASE_DIR)
MEDSERVER = ServerConfig.from_environ(os.environ)

DATA_DIR: Path = MEDSERVER.data_dir
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """A per-installation key, kept owner-readable in the data dir across restarts."""
    if MEDSERVER.secret_key:
        return MEDSERVER.secret_key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = MEDSERVER.debug
# Names a reverse proxy or the clinic's DNS gives this machine can be added,
# comma-separated, in MEDSERVER_ALLOWED_HOSTS.
ALLOWED_HOSTS = allowed_hosts_for(MEDSERVER.host) + [
    host.strip() for host in MEDSERVER.allowed_hosts.split(",") if host.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "chat",
    "api",
    "audit",
    "reviews",
    "lifecycle",
]

MIDDLEWARE = [
    # Outermost, so that it counts the status the client gets (/metrics).
    "medserver_site.metrics.RequestMetricsMiddleware",
    # First, so that it compresses the response every other one has finished.
    "medserver_site.middleware.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "medserver_site.middleware.ContentSecurityPolicyMiddleware",
    "medserver_site.middleware.NoStoreMiddleware",
    # Early, so that every later rule can tell an htmx request (request.htmx).
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "medserver_site.middleware.LocalUserMiddleware",
    "chat.idle_sign_out.IdleSignOutMiddleware",
    "chat.middleware.RateLimitMiddleware",
    "chat.middleware.RefusalMiddleware",
    # Everything needs a login except views marked @login_not_required
    # (login, first-run setup, /api/health).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "medserver_site.urls"
ASGI_APPLICATION = "medserver_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "medserver.sqlite3",
        "OPTIONS": {
            # WAL lets page reads go on while an answer is being saved; IMMEDIATE
            # transactions take the write lock up front instead of failing midway.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        # Kept open on the thread that does the chat socket's and the answers'
        # database work: with SQLite, opening a connection (and closing the last
        # one, which checkpoints the WAL) costs more than most of the queries an
        # answer makes. HTTP requests close theirs as they end (chat.apps).
        "CONN_MAX_AGE": None,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_URL_PATH = "/accounts/login/"
# Sessions end after --session-timeout minutes without activity (see
# chat.idle_sign_out.IdleSignOutMiddleware); requests to these paths
# poll in the background and do not count as activity.
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
MEDSERVER_POLLING_PATHS = {"/api/health", "/chat/status/"}
LOGIN_REDIRECT_URL = "chat:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The clinic's clock: --time-zone, else the machine's ($TZ, /etc/localtime).
TIME_ZONE = MEDSERVER.time_zone or system_time_zone()
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
# `medserver` collects the static files here at start (medserver_site.static_files):
# names with a hash of the content, which browsers may cache for good, and gzip copies.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_ALLOW_ALL_ORIGINS = False  # the pages of this server are their only users

# Uploaded images are patient data: kept under the data dir, outside static/,
# and served only through an owner-checking view (never by URL guessing).
MEDIA_ROOT = DATA_DIR / "uploads"
DATA_UPLOAD_MAX_MEMORY_SIZE = MEDSERVER.max_request_bytes
# A CT series may be chosen file by file: hundreds of .dcm files in one upload
# (as many as a zip of them may hold, imaging.archives.MAX_MEMBERS).
DATA_UPLOAD_MAX_NUMBER_FILES = 5000
FILE_UPLOAD_PERMISSIONS = 0o600

# One process owns the model, so the in-memory layer reaches every consumer.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Browser hardening. With TLS (--ssl-certfile/--ssl-keyfile) cookies travel
# only over HTTPS and browsers are told to keep to HTTPS for this host.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if MEDSERVER.tls:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload is for public domains on browsers' built-in list, never for a
    # clinic's own server: refusing it is deliberate, not an oversight.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {"()": "medserver_site.json_logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": MEDSERVER.log_format}},
    "root": {"handlers": ["console"], "level": MEDSERVER.log_level.upper()},
    "loggers": {
        # Daphne logs each request at INFO; keep the console for what matters.
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
