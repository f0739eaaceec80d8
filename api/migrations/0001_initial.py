"""The model moves here from the chat app; its table (made by chat's migrations) stays:
this changes Django's picture of it only (see chat 0010)."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import api.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("chat", "0010_move_tokens_audit_reviews_to_their_apps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "name",
                            models.CharField(help_text="What the token is for.", max_length=100),
                        ),
                        (
                            "prefix",
                            models.CharField(
                                help_text="The start of the key, to recognise it.", max_length=16
                            ),
                        ),
                        ("key_hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "service",
                            models.BooleanField(
                                default=False,
                                help_text="For a front end many people use (Open WebUI, LibreChat): its own limits below, and the end user it names is recorded.",
                            ),
                        ),
                        (
                            "max_streams",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="Service token: answers it may have generating at once (empty: 8, or --max-user-streams if higher).",
                                null=True,
                                validators=[django.core.validators.MinValueValidator(1)],
                            ),
                        ),
                        (
                            "rate_limit",
                            models.CharField(
                                blank=True,
                                help_text="Service token: requests it may make, e.g. 240/minute (empty: ten times the server's --rate-limit).",
                                max_length=32,
                                validators=[api.models.validate_rate],
                            ),
                        ),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "chat_apitoken",
                        "ordering": ["-created_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
