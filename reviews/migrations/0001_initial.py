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
                    name="AnswerReview",
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
                            "reviewer_name",
                            models.CharField(help_text="Kept if the user goes.", max_length=150),
                        ),
                        (
                            "verdict",
                            models.CharField(
                                blank=True,
                                choices=[("reviewed", "Reviewed"), ("rejected", "Rejected")],
                                max_length=16,
                            ),
                        ),
                        (
                            "rating",
                            models.CharField(
                                blank=True,
                                choices=[("up", "Helpful"), ("down", "Not helpful")],
                                max_length=8,
                            ),
                        ),
                        ("comment", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True, db_index=True)),
                        (
                            "message",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="reviews",
                                to="chat.message",
                            ),
                        ),
                        (
                            "reviewer",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="reviews",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "chat_answerreview",
                        "ordering": ["-updated_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("message", "reviewer"), name="review_one_per_reviewer"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
