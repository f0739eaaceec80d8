"""The model moves here from the chat app; its table (made by chat's migrations) stays:
this changes Django's picture of it only (see chat 0010)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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
                    name="AuditEvent",
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
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "username",
                            models.CharField(
                                blank=True, help_text="Kept if the user goes.", max_length=150
                            ),
                        ),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("login", "Signed in"),
                                    ("login_failed", "Sign-in failed"),
                                    ("logout", "Signed out"),
                                    ("session_view", "Opened a chat"),
                                    ("admin_session_view", "Reviewed a chat in admin"),
                                    ("session_rename", "Renamed a chat"),
                                    ("session_delete", "Deleted a chat"),
                                    ("message_edit", "Edited a message"),
                                    ("message_delete", "Deleted a message"),
                                    ("export", "Exported a chat"),
                                    ("answer_review", "Reviewed an answer"),
                                    ("reviews_export", "Exported answer reviews"),
                                    ("preset_save", "Saved a preset"),
                                    ("preset_delete", "Deleted a preset"),
                                    ("api_token_create", "Created an API token"),
                                    ("api_token_revoke", "Revoked an API token"),
                                    ("api_token_use", "Used an API token"),
                                    ("backup", "Backed up the data"),
                                    ("restore", "Restored a backup"),
                                    ("retention", "Deleted expired chats"),
                                    ("session_hold", "Placed a hold on a chat"),
                                    ("session_release", "Released a chat's hold"),
                                    ("user_export", "Exported a user's data"),
                                    ("user_erase", "Erased a user's data"),
                                    ("audit_prune", "Pruned the audit trail"),
                                    ("api_answer", "Answered through the API"),
                                ],
                                db_index=True,
                                max_length=32,
                            ),
                        ),
                        (
                            "target",
                            models.CharField(
                                blank=True, help_text="e.g. session:<id>", max_length=100
                            ),
                        ),
                        ("detail", models.CharField(blank=True, max_length=300)),
                        ("address", models.GenericIPAddressField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "chat_auditevent",
                        "ordering": ["-created_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
