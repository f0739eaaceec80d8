"""A clinic's database made by 0881a99 (before api, audit and reviews had apps of their
own) migrates in place and keeps every chat, message, attachment, review, audit row and
API token, and the staff permissions on the moved models."""

from __future__ import annotations

import hashlib

from tests.lifecycle.datadir import PROJECT, django_run, query

# 0881a99's chat migrations, byte for byte: migrating to the last of them makes
# exactly the schema that release made.
AT_0881A99 = {
    "0001_initial": "e5c38053fc3fb25a6e93f418fa7ac073766e51ae811f039cdedba098a4a02c20",
    "0002_api_tokens": "2fbab7ec1f1664f515f0f96db1e3de72340f264d9a84c45ad18a2da2e6d4f4e2",
    "0003_branches_and_session_settings": (
        "739d0ef62d53eb773a67e46df14ee1f8b9f3453098de340b882dd6ac852087a6"
    ),
    "0004_audit_events": "964c24b59a6a48ffb1c900a1db85db866cf2220414531bc616baad1f32fd8a27",
    "0005_presets_reviews_provenance_dicom": (
        "6c842a61728a5388c6aad342196d628b70027f5fbf61c0a2cf0c1207f4693266"
    ),
}
RELEASE = ("chat", "0005_presets_reviews_provenance_dicom")
PNG = b"\x89PNG\r\n\x1a\n an image kept across the upgrade"

AS_0881A99_LEFT_IT = f"""
from pathlib import Path
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
old = MigrationLoader(connection).project_state({RELEASE!r}).apps
User = old.get_model("auth", "User")
ContentType = old.get_model("contenttypes", "ContentType")
Permission = old.get_model("auth", "Permission")
ann = User.objects.create(username="ann")
auditor = User.objects.create(username="auditor", is_staff=True)
# As 0881a99's post_migrate left them: the models' content types and permissions under chat.
for model in ("auditevent", "answerreview", "apitoken"):
    kind, _ = ContentType.objects.get_or_create(app_label="chat", model=model)
    view, _ = Permission.objects.get_or_create(
        content_type=kind, codename="view_" + model, defaults={{"name": "View"}}
    )
    auditor.user_permissions.add(view)
chat = old.get_model("chat", "ChatSession").objects.create(
    owner=ann, model_name="demo", title="Knee"
)
Message = old.get_model("chat", "Message")
question = Message.objects.create(session=chat, role="user", content="UPGRADEMARK question")
answer = Message.objects.create(
    session=chat, role="assistant", content="UPGRADEMARK answer", parent=question, status="done"
)
path = "attachments/u{{}}/kept.png".format(ann.pk)
(Path(settings.MEDIA_ROOT) / path).parent.mkdir(parents=True, exist_ok=True)
(Path(settings.MEDIA_ROOT) / path).write_bytes({PNG!r})
old.get_model("chat", "Attachment").objects.create(
    owner=ann, message=question, file=path, content_type="image/png",
    width=1, height=1, size_bytes={len(PNG)}, label="CT slice 1 of 1",
)
old.get_model("chat", "AnswerReview").objects.create(
    message=answer, reviewer=ann, reviewer_name="ann", verdict="rejected", comment="wrong side"
)
old.get_model("chat", "AuditEvent").objects.create(
    user=ann, username="ann", action="export", target="chatsession:" + str(chat.pk)
)
old.get_model("chat", "ApiToken").objects.create(
    owner=ann, name="PACS", prefix="ms_abc", key_hash="f" * 64
)
result = {{"chat": str(chat.pk), "question": question.pk, "answer": answer.pk}}
"""

READ_WITH_TODAYS_MODELS = """
from pathlib import Path
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from api.models import ApiToken
from audit.models import AuditEvent
from chat.models import Attachment, ChatSession
from reviews.models import AnswerReview
chat = ChatSession.objects.get()
attachment = Attachment.objects.get()
review = AnswerReview.objects.get()
event = AuditEvent.objects.get(action="export")
token = ApiToken.objects.get()
auditor = User.objects.get(username="auditor")
result = {
    "chat": str(chat.pk),
    "messages": [m.content for m in chat.messages.order_by("pk")],
    "attachment": [
        attachment.message_id,
        attachment.label,
        Path(attachment.file.path).read_bytes().decode("latin-1"),
    ],
    "review": [review.message_id, review.verdict, review.comment, review.reviewer.username],
    "event": [event.username, event.target],
    "token": [token.owner.username, token.name, token.prefix, token.is_active],
    "perms": sorted(
        p for p in auditor.get_all_permissions()
        if p.startswith(("api.", "audit.", "reviews.", "chat."))
    ),
    "content_types": sorted(
        (kind.app_label, kind.model)
        for kind in ContentType.objects.filter(model__in=["auditevent", "answerreview", "apitoken"])
    ),
}
"""


def test_the_migrations_up_to_0881a99_are_that_releases():
    folder = PROJECT / "chat" / "migrations"
    for name, digest in AT_0881A99.items():
        assert hashlib.sha256((folder / f"{name}.py").read_bytes()).hexdigest() == digest, name


def test_a_database_made_by_0881a99_upgrades_in_place_and_keeps_every_row(tmp_path):
    data_dir = tmp_path / "data"
    made = django_run(data_dir, AS_0881A99_LEFT_IT, migrate_to=RELEASE)
    tables = {name for (name,) in query(data_dir, "SELECT name FROM sqlite_master")}
    assert {"chat_auditevent", "chat_answerreview", "chat_apitoken"} <= tables

    now = django_run(data_dir, READ_WITH_TODAYS_MODELS)

    assert now["chat"] == made["chat"]
    assert now["messages"] == ["UPGRADEMARK question", "UPGRADEMARK answer"]
    assert now["attachment"] == [made["question"], "CT slice 1 of 1", PNG.decode("latin-1")]
    assert now["review"] == [made["answer"], "rejected", "wrong side", "ann"]
    assert now["event"] == ["ann", f"chatsession:{made['chat']}"]
    assert now["token"] == ["ann", "PACS", "ms_abc", True]
    # The permissions granted on the old models hold on the moved ones.
    assert now["perms"] == [
        "api.view_apitoken",
        "audit.view_auditevent",
        "reviews.view_answerreview",
    ]
    assert now["content_types"] == [
        ["api", "apitoken"],
        ["audit", "auditevent"],
        ["reviews", "answerreview"],
    ]
    # Same tables, no copies: the rows never moved.
    tables_after = {name for (name,) in query(data_dir, "SELECT name FROM sqlite_master")}
    assert {"chat_auditevent", "chat_answerreview", "chat_apitoken"} <= tables_after
    assert not {"audit_auditevent", "reviews_answerreview", "api_apitoken"} & tables_after
