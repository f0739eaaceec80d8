"""API tokens, the audit trail and answer reviews move to apps of their own (api,
audit, reviews). Their tables stay as they are (chat_apitoken, chat_auditevent,
chat_answerreview): only Django's picture of the models changes here, so an
existing clinic's database upgrades in place, rows, triggers and all. The
content types move with them, so staff permissions and admin history keep
pointing at the same models.
"""

from django.db import migrations

MOVED = {"apitoken": "api", "auditevent": "audit", "answerreview": "reviews"}


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        # A content type made for the new app before this ran (none normally) gives way.
        ContentType.objects.filter(app_label=app_label, model=model).delete()
        ContentType.objects.filter(app_label="chat", model=model).update(app_label=app_label)


def move_content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        ContentType.objects.filter(app_label="chat", model=model).delete()
        ContentType.objects.filter(app_label=app_label, model=model).update(app_label="chat")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_clinical_drafts_cut_off"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="apitoken", name="owner"),
                migrations.RemoveField(model_name="auditevent", name="user"),
                migrations.DeleteModel(name="AnswerReview"),
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="AuditEvent"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
