"""`python manage.py create_api_token USERNAME`: print a new API token as the last line.

`--service NAME` makes a service token for a front end many people share (Open
WebUI, LibreChat): it belongs to an account named NAME that cannot sign in
(made if missing), with its own `--streams` and `--rate` limits.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import tokens as api_tokens


class Command(BaseCommand):
    help = "Create an API token for a user, or a service token for a front end, and print it."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="the user the personal token is for")
        parser.add_argument("--name", default=None, help="what the token is for")
        parser.add_argument(
            "--service",
            metavar="NAME",
            help="make a service token for a front end (e.g. open-webui), owned by an "
            "account of that name that cannot sign in",
        )
        parser.add_argument("--streams", type=int, help="service token: answers generating at once")
        parser.add_argument("--rate", help="service token: requests allowed, e.g. 240/minute")

    def handle(self, *args, username, name, service, streams, rate, **options):
        if bool(username) == bool(service):
            raise CommandError("Give either a USERNAME or --service NAME.")
        if not service and (streams is not None or rate):
            raise CommandError("--streams and --rate are for service tokens (--service NAME).")
        users = get_user_model()
        if service:
            user, created = users.objects.get_or_create(username=service)
            if created:
                user.set_unusable_password()  # a front end's account, never a person's sign-in
                user.save()
            elif not user.is_active:
                raise CommandError(f"The account {service!r} is disabled.")
            elif user.has_usable_password():
                raise CommandError(
                    f"{service!r} is a person's account (it can sign in); "
                    "give the front end a name of its own."
                )
        else:
            try:
                user = users.objects.get(username=username, is_active=True)
            except users.DoesNotExist:
                raise CommandError(f"No active user named {username!r}.") from None
        try:
            token, key = api_tokens.api_token_create(
                owner=user,
                name=name or (service or "Command line"),
                service=bool(service),
                max_streams=streams,
                rate_limit=(rate or "").strip().lower(),
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        kind = "service token" if service else "API token"
        self.stderr.write(
            f"Created {kind} {token.prefix}… for {user.get_username()}. Keep it secret:"
        )
        self.stdout.write(key)
