"""A backup keeps the kept values of a DICOM series (Attachment.volume) with its slices."""

from __future__ import annotations

from lifecycle import database
from tests.lifecycle.datadir import django_run, files_under, medserver, query

A_SERIES = """
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from chat import services
from tests.dicom_files import ct_series, zip_of

user = get_user_model().objects.create_user("ann", password="pw-long-1")
session = services.session_create(owner=user, model_name="demo")
members = {f"CT/IM{n:04d}.dcm": raw for n, raw in enumerate(ct_series(4))}
upload = services.attachments_upload(
    owner=user, session=session, uploads=[SimpleUploadedFile("ct.zip", zip_of(members))]
)
assert not upload.errors, upload.errors
result = sorted({a.volume.name for a in upload.attachments})
"""


def test_a_series_kept_values_are_backed_up_and_restored(tmp_path):
    data_dir = tmp_path / "data"
    (volume,) = django_run(data_dir, A_SERIES)
    assert volume in database.attachment_files(data_dir / "medserver.sqlite3")
    archive = tmp_path / "backup.tar.gz"
    assert medserver("backup", "--to", str(archive), data_dir=data_dir).returncode == 0

    target = tmp_path / "restored"
    done = medserver("restore", str(archive), "--data-dir", str(target))

    assert done.returncode == 0, done.stderr
    assert "every file matches" in done.stdout
    restored = files_under(target / "uploads")
    assert restored == files_under(data_dir / "uploads")
    assert volume in restored
    assert query(target, "SELECT count(*) FROM chat_attachment WHERE volume = ?", volume) == [(4,)]
