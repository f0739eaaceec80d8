"""Exports of a chat for the patient's chart: Markdown and PDF, read back as a reader would."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from markdown_it import MarkdownIt
from PIL import Image
from pypdf import PdfReader

import exports
from audit.models import AuditEvent
from chat.disclaimer import CLINICAL_DISCLAIMER
from chat.models import Attachment, ChatSession, Message, Preset
from exports.pdf import MISSING
from reviews.models import AnswerReview

pytestmark = pytest.mark.django_db

EXPORTED_AT = datetime(2026, 3, 14, 9, 26, tzinfo=dt_timezone.utc)
QUESTION = "Septic shock, 70 kg, MAP 58 mmHg after 30 mL/kg. Next steps?"
ANSWER = (
    "## Assessment\n\n"
    "Start **noradrenaline** at 0.1 µg/kg/min, titrate to MAP ≥ 65 mmHg.\n\n"
    "- Lactate every 2 h\n"
    "- Hydrocortisone if ≥ 0.25 µg/kg/min\n\n"
    "```\ndose = 0.1 * 70  # µg/min\n```\n"
)
THINKING = "Considering the Surviving Sepsis thresholds before answering."


def _png(size=(640, 480), colour=(20, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _attach(message: Message, label: str = "", size=(640, 480)) -> Attachment:
    return Attachment.objects.create(
        owner=message.session.owner,
        message=message,
        file=ContentFile(_png(size), name="scan.png"),
        content_type="image/png",
        width=size[0],
        height=size[1],
        size_bytes=1,
        label=label,
    )


def _answer(session, question, content, **fields) -> Message:
    fields = {
        "model_name": "google/medgemma-1.5-4b-it",
        "engine": "transformers",
        "quantization": "nf4",
        "sampling": {"temperature": 0.2, "top_p": 0.9, "max_new_tokens": 1024, "thinking": True},
        "preset_name": "Sepsis bundle",
        "preset_version": 3,
        "prompt_tokens": 412,
        "completion_tokens": 96,
        "duration_ms": 14_200,
        "completed_at": timezone.now(),
        **fields,
    }
    return Message.objects.create(
        session=session, parent=question, role=Message.Role.ASSISTANT, content=content, **fields
    )


@pytest.fixture
def chat(user) -> ChatSession:
    """A chat of two turns: a reviewed answer (with an older version) and a stopped one."""
    user.first_name, user.last_name = "Meredith", "Grey"
    user.save()
    preset = Preset.objects.create(name="Sepsis bundle", system_prompt="Be brief.", version=3)
    session = ChatSession.objects.create(
        owner=user,
        title="Septic shock ≥ 2 SIRS",
        model_name="google/medgemma-1.5-4b-it",
        preset=preset,
        system_prompt="Doses in µg/kg/min.",
    )
    question = Message.objects.create(session=session, role=Message.Role.USER, content=QUESTION)
    _attach(question, label="CT slice 12 of 120")
    _answer(session, question, "An OLD VERSION of the answer.", active=False)
    answer = _answer(session, question, ANSWER, thinking=THINKING)
    AnswerReview.objects.create(
        message=answer,
        reviewer=user,
        reviewer_name="dr-house",
        verdict=AnswerReview.Verdict.REVIEWED,
        rating=AnswerReview.Rating.UP,
        comment="Agree with the vasopressor plan.",
    )
    follow_up = Message.objects.create(
        session=session, parent=answer, role=Message.Role.USER, content="And the fluids?"
    )
    _answer(session, follow_up, "Reassess before more", status=Message.Status.STOPPED)
    return session


def _markdown(session, **options) -> str:
    export = exports.session_export(session, "md", exported_at=EXPORTED_AT, **options)
    assert export.content_type == "text/markdown; charset=utf-8"
    return export.content.decode()


def _pdf_text(session, **options) -> list[str]:
    export = exports.session_export(session, "pdf", exported_at=EXPORTED_AT, **options)
    assert export.content.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(export.content)).pages]


def _flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- Markdown


def test_markdown_holds_the_branch_on_show_with_provenance_reviews_and_disclaimers(chat):
    text = _markdown(chat)
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == "Septic shock ≥ 2 SIRS"
    assert [h.split(" · ")[0] for h in headings[1:]] == [
        "Question 1", "Answer 1", "Assessment", "Question 2", "Answer 2",
    ]  # fmt: skip
    assert "\n#### Assessment\n" in text  # the answer's headings sit under its own
    assert QUESTION in text and "Start **noradrenaline** at 0.1 µg/kg/min" in text
    assert "OLD VERSION" not in text  # only the versions on show
    assert text.startswith("# Septic shock")
    assert text.count(CLINICAL_DISCLAIMER) == 2
    top, bottom = text.index(CLINICAL_DISCLAIMER), text.rindex(CLINICAL_DISCLAIMER)
    assert top < text.index(QUESTION) < text.index("Reassess before more") < bottom
    for fact in (
        "Clinician: Meredith Grey (clinician)",
        "Exported: 2026-03-14 09:26 UTC",
        "Preset: Sepsis bundle (version 3)",
        "Doses in µg/kg/min.",
        "Model: google/medgemma-1.5-4b-it",
        "Engine: Transformers",
        "Quantization: 4-bit NF4",
        "Temperature: 0.2",
        "Top-p: 0.9",
        "Token budget: 1,024",
        "Preset: Sepsis bundle (version 3)",
        "Took: 14.2 s",
        "Reviewed by dr-house",
        "Helpful",
        "“Agree with the vasopressor plan.”",
        "**Stopped before the answer was finished.**",
    ):
        assert fact in text, fact


def test_markdown_has_the_thinking_only_when_asked(chat):
    assert THINKING not in _markdown(chat)
    text = _markdown(chat, include_thinking=True)
    assert f"> {THINKING}" in text
    assert text.index(THINKING) < text.index("Start **noradrenaline**")


def test_markdown_thumbnails_are_small_jpegs_shown_where_the_image_was_sent(chat):
    text = _markdown(chat)
    tokens = MarkdownIt("commonmark").parse(text)
    images = [
        child for t in tokens if t.type == "inline" for child in t.children if child.type == "image"
    ]
    assert len(images) == 1
    assert images[0].content == "Image 1: CT slice 12 of 120"
    src = images[0].attrs["src"]
    assert src.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == exports.MARKDOWN_THUMBNAIL_PX
    # The picture sits under its question; its data waits after the closing disclaimer.
    assert text.index("![Image 1: CT slice 12 of 120]") < text.index("## Answer 1")
    assert text.rindex(CLINICAL_DISCLAIMER) < text.index("data:image/jpeg")


def test_a_missing_image_file_is_named_and_does_not_stop_either_export(chat):
    attachment = Attachment.objects.get()
    attachment.file.delete(save=False)
    assert "Image 1: CT slice 12 of 120 — the file is no longer available" in _markdown(chat)
    assert "no longer available" in _flat(" ".join(_pdf_text(chat)))


def test_failed_and_unfinished_answers_say_so(chat):
    answer = Message.objects.get(content="Reassess before more")
    answer.status, answer.error = Message.Status.ERROR, "The model ran out of memory."
    answer.save()
    assert "**This answer failed: The model ran out of memory.**" in _markdown(chat)
    answer.status = Message.Status.STREAMING
    answer.save()
    assert "Still being written when this was exported" in _markdown(chat)


# ---------------------------------------------------------------- PDF


def test_pdf_holds_title_conversation_provenance_and_disclaimer_on_every_page(chat):
    Message.objects.filter(content="Reassess before more").update(
        content="\n\n".join(f"Paragraph {n}: reassess perfusion." * 8 for n in range(60))
    )
    pages = _pdf_text(chat)
    assert len(pages) > 2
    text = _flat(" ".join(pages))
    for expected in (
        "Septic shock ≥ 2 SIRS",
        "Meredith Grey (clinician)",
        _flat(QUESTION),
        "Start noradrenaline at 0.1 µg/kg/min, titrate to MAP ≥ 65 mmHg.",
        "Lactate every 2 h",
        "dose = 0.1 * 70 # µg/min",
        "Image 1: CT slice 12 of 120",
        "Engine: Transformers",
        "Preset: Sepsis bundle (version 3)",
        "Reviewed by dr-house",
        "Stopped before the answer was finished.",
    ):
        assert expected in text, expected
    assert "OLD VERSION" not in text
    assert THINKING not in text
    for number, page in enumerate(pages, start=1):
        assert CLINICAL_DISCLAIMER in _flat(page), f"page {number}"
        assert f"Page {number} of {len(pages)}" in page


def test_pdf_embeds_the_thumbnail_and_the_thinking_when_asked(chat):
    export = exports.session_export(chat, "pdf", include_thinking=True, exported_at=EXPORTED_AT)
    reader = PdfReader(io.BytesIO(export.content))
    assert THINKING in _flat(reader.pages[0].extract_text())
    [image] = reader.pages[0].images
    assert max(image.image.size) <= 480
    assert reader.metadata.title == "Septic shock ≥ 2 SIRS"


def test_pdf_draws_a_box_for_characters_its_font_lacks_and_says_so(chat):
    Message.objects.filter(content="Reassess before more").update(
        content="Patient speaks 日本語 😀; *italic μg* and 5 ｍｇ\u200b."
    )
    text = _flat(" ".join(_pdf_text(chat)))
    assert f"Patient speaks {MISSING * 3} {MISSING};" in text
    assert "italic μg and 5 mg." in text  # upright μ for the italic; NFKD for the rest
    assert "the Markdown export keeps it" in text


@pytest.mark.parametrize(
    "markdown",
    [
        "\n".join("  " * depth + f"- level {depth}" for depth in range(40)),
        ">" * 60 + " deep quote",
        "| " + " | ".join(f"Column {n}" for n in range(25)) + " |\n" + "|---" * 25 + "|\n"
        "| " + " | ".join("supercalifragilistic" for _ in range(25)) + " |",
        "x" * 5000,
        "```\n" + "\t" + "y" * 800 + "\n```",
        "<script>alert(1)</script> **unclosed *emphasis",
        "",
    ],
    ids=["deep-list", "deep-quote", "wide-table", "long-word", "long-code", "html", "empty"],
)
def test_pdf_lays_out_whatever_markdown_a_model_writes(chat, markdown):
    Message.objects.filter(content="Reassess before more").update(content=markdown)
    assert _pdf_text(chat)


# ---------------------------------------------------------------- downloads


def test_downloads_are_attachments_named_for_the_title_and_date(client, user, chat):
    client.force_login(user)
    today = timezone.localdate().isoformat()
    for kind, content_type in (("md", "text/markdown"), ("pdf", "application/pdf")):
        response = client.get(f"/chat/{chat.pk}/export.{kind}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith(content_type)
        assert response["Content-Disposition"] == (
            f'attachment; filename="septic-shock-2-sirs-{today}.{kind}"'
        )
        assert response["Cache-Control"] == "no-store"


def test_a_title_without_latin_letters_still_gives_a_file_name(user):
    session = ChatSession.objects.create(owner=user, title="Отчёт / <script>", model_name="demo")
    record = exports.chat_record(session, exported_at=EXPORTED_AT)
    assert exports.export_filename(record, "pdf") == "script-2026-03-14.pdf"
    session.title = "Отчёт"
    assert exports.export_filename(record, "md") == "chat-2026-03-14.md"


def test_the_thinking_box_adds_the_thinking(client, user, chat):
    client.force_login(user)
    assert THINKING not in client.get(f"/chat/{chat.pk}/export.md").content.decode()
    assert THINKING in client.get(f"/chat/{chat.pk}/export.md?thinking=1").content.decode()


def test_exports_are_recorded_in_the_audit_trail(client, user, chat):
    client.force_login(user)
    client.get(f"/chat/{chat.pk}/export.pdf?thinking=1")
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert event.user == user and event.target == f"chatsession:{chat.pk}"
    assert event.detail == "pdf, thinking included"


def test_another_users_chat_cannot_be_exported(client, other_user, chat):
    client.force_login(other_user)
    for kind in ("md", "pdf"):
        assert client.get(f"/chat/{chat.pk}/export.{kind}").status_code == 404
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_exports_need_a_sign_in_and_a_known_format(client, user, chat):
    response = client.get(f"/chat/{chat.pk}/export.pdf")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(user)
    assert client.get(f"/chat/{chat.pk}/export.docx").status_code == 404


def test_the_chat_page_offers_both_exports_and_states_the_disclaimer(client, user, chat, engine):
    client.force_login(user)
    html = client.get(f"/chat/{chat.pk}/").content.decode()
    assert f'formaction="/chat/{chat.pk}/export.pdf"' in html
    assert f'formaction="/chat/{chat.pk}/export.md"' in html
    assert re.search(r'<input type="checkbox" name="thinking" value="1">', html)
    assert f'<p class="disclaimer" id="clinical-disclaimer">{CLINICAL_DISCLAIMER}</p>' in html


HOSTILE = (
    '<img src=x onerror="alert(1)"> <script>alert(2)</script> <!-- c --> [go](javascript:alert(3))'
)


def test_markdown_export_is_inert_whatever_the_chat_holds(user):
    """Raw HTML in a title, question, answer, thinking, preset, system prompt or
    review shows as text in a viewer that renders HTML; code keeps its `<`."""
    preset = Preset.objects.create(name=f"P {HOSTILE}", system_prompt="x", version=1)
    session = ChatSession.objects.create(
        owner=user, title=f"T {HOSTILE}", model_name="demo", preset=preset, system_prompt=HOSTILE
    )
    question = Message.objects.create(session=session, role=Message.Role.USER, content=HOSTILE)
    code = "```html\n<b>kept</b>\n```\n\nand `<i>kept</i>` inline"
    answer = _answer(session, question, f"{HOSTILE}\n\n{code}", thinking=HOSTILE)
    AnswerReview.objects.create(message=answer, reviewer=user, reviewer_name="r", comment=HOSTILE)

    markdown = _markdown(session, include_thinking=True)
    rendered = MarkdownIt("commonmark").render(markdown)  # HTML allowed, as many viewers do

    for live in ("<img", "<script", "<!--", 'href="javascript:'):
        assert live not in rendered.replace("<!-- Thumbnails", ""), live
    assert rendered.count("&lt;script&gt;alert(2)") >= 7  # each shown as text
    assert "<b>kept</b>" in markdown and "`<i>kept</i>`" in markdown
