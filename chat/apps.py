from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Clinical chat"

    def ready(self) -> None:
        from chat import audit  # noqa: F401 - connects the sign-in signals
