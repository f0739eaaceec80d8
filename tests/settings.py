"""Settings for the test suite: MedServer's own, with a throwaway data dir."""

import os
import tempfile

os.environ.setdefault("MEDSERVER_DATA_DIR", tempfile.mkdtemp(prefix="medserver-tests-"))
os.environ.setdefault("MEDSERVER_LOG_LEVEL", "warning")

from medserver_site.settings import *  # noqa: E402,F403

# Fast hashing: the suite creates many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
