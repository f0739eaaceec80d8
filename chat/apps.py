from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_builtin_presets(sender, **kwargs) -> None:
    from chat.services.presets import sync_builtin_presets

    sync_builtin_presets()


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Clinical chat"

    def ready(self) -> None:
        from chat import audit  # noqa: F401 - connects the sign-in signals

        post_migrate.connect(_sync_builtin_presets, sender=self)
