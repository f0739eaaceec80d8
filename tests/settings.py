"""Settings for the test suite: MedServer's own, with a throwaway data dir."""

import os
import tempfile

os.environ.setdefault("MEDSERVER_DATA_DIR", tempfile.mkdtemp(prefix="medserver-tests-"))
os.environ.setdefault("MEDSERVER_LOG_LEVEL", "warning")

from medserver_site.settings import *  # noqa: E402,F403

# Fast hashing: the suite creates many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The pages link static files by their plain names, served from static/ as they
# are: `medserver` collects the hashed, compressed copies at start, the suite
# needs no such step (tests/site/test_static_files.py checks what it makes).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
