from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Connect the sign-in, sign-out and failed sign-in receivers.
        from audit import trail  # noqa: F401
