"""The data's life: backups and restores, retention, a user's data on request, safe upgrades.

Backups and restores work on a data dir's files (the SQLite database through its
online backup API, the uploads, the secret key) and need no running server;
retention and the per-user commands go through the ORM, like the rest of MedServer.
"""
