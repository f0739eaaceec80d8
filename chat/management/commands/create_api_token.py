"""`python manage.py create_api_token USERNAME`: print a new API token as the last line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat import services


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="Command line", help="what the token is for")

    def handle(self, *args, username: str, name: str, **options):
        try:
            user = get_user_model().objects.get(username=username, is_active=True)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No active user named {username!r}.") from None
        token, key = services.api_token_create(owner=user, name=name)
        self.stderr.write(f"Created API token {token.prefix}… for {username}. Keep it secret:")
        self.stdout.write(key)
