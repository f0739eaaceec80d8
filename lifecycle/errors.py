"""What goes wrong with a backup or a restore, said in one line an admin can act on."""


class LifecycleError(Exception):
    """A backup, restore or migration that could not be done; the message says why."""


class BackupError(LifecycleError):
    """A backup that could not be written (target exists, disk full, no database)."""


class RestoreRefused(LifecycleError):
    """An archive that will not be restored: damaged, tampered with, wrong passphrase,
    from a newer MedServer, or a data dir that is not empty."""
