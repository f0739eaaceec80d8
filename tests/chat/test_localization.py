"""Localization boxes in MedGemma 1.5's answers: read from a canned answer in the format
of Google's localization notebook, drawn on the image (checked pixel by pixel), shown
under the answer in the page, and put in the Markdown and PDF exports."""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image
from pypdf import PdfReader

import exports
from chat import services
from chat.models import Attachment, Message
from imaging import localization
from imaging.localization import PALETTE, Box

GRAY = 90
WIDTH, HEIGHT = 800, 600
# As MedGemma 1.5 answers the notebook's prompt: reasoning, then the final answer.
ANSWER = (
    "The right lower zone shows an opacity; the cardiac silhouette is enlarged.\n\n"
    'An example of the format is ```json[{"box_2d": [1, 2, 3, 4], "label": "x"}]```, '
    "but the findings are:\n\n"
    "Final Answer: ```json\n"
    "[\n"
    '  {"box_2d": [500, 100, 800, 400], "label": "right lower zone opacity"},\n'
    '  {"box_2d": [300, 450, 700, 800], "label": "cardiomegaly"}\n'
    "]\n```"
)
OPACITY = (100, 500, 400, 800)  # x0, y0, x1, y1 in 0..1000
HEART = (450, 300, 800, 700)


def _px(box, width=WIDTH, height=HEIGHT):
    x0, y0, x1, y1 = box
    return x0 * width // 1000, y0 * height // 1000, x1 * width // 1000, y1 * height // 1000


def _gray(width=WIDTH, height=HEIGHT) -> Image.Image:
    return Image.new("L", (width, height), GRAY)


def _close(pixel, colour, tolerance=0) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, colour, strict=False))


def assert_boxes_drawn(pixels: np.ndarray, tolerance: int = 0) -> None:
    """The opacity's box in orange and the heart's in sky blue, at their places, with
    the image untouched inside them and outside."""
    height, width = pixels.shape[:2]
    for box, colour in ((OPACITY, PALETTE[0]), (HEART, PALETTE[1])):
        left, top, right, bottom = _px(box, width, height)
        middle_y, middle_x = (top + bottom) // 2, (left + right) // 2
        for y, x in ((middle_y, left), (middle_y, right), (bottom, middle_x)):
            assert _close(pixels[y, x], colour, tolerance), (box, y, x, pixels[y, x])
        inside = pixels[middle_y, left + (right - left) // 3]
        assert _close(inside, (GRAY, GRAY, GRAY), tolerance), (box, inside)
    assert _close(pixels[height - 5, 5], (GRAY, GRAY, GRAY), tolerance)  # outside both


# --- reading the boxes


def test_the_final_answers_boxes_are_read_in_order_with_their_labels():
    assert localization.parse_boxes(ANSWER) == [
        Box("right lower zone opacity", 500, 100, 800, 400),
        Box("cardiomegaly", 300, 450, 700, 800),
    ]


def test_malformed_boxes_are_skipped_and_coordinates_kept_in_range():
    text = (
        "Final Answer: "
        '[{"box_2d": [900, 1200, -5, 300], "label": "  pleural\\n effusion "},'
        ' {"box_2d": [1, 2, 3], "label": "three numbers"},'
        ' {"box_2d": ["a", 2, 3, 4], "label": "text"},'
        ' {"box_2d": [10, 10, 10, 90], "label": "no area"},'
        ' {"label": "no box"}, "not an object",'
        ' {"box_2d": [100, 100, 200, 200]}]'
    )

    assert localization.parse_boxes(text) == [
        Box("pleural effusion", 0, 300, 900, 1000),  # pairs ordered, clamped, label tidied
        Box("finding", 100, 100, 200, 200),
    ]


@pytest.mark.parametrize(
    "text",
    ["No boxes here.", "```json\n[1, 2, 3]\n```", 'Final Answer: [{"box_2d": [1, 2', "[{]"],
)
def test_an_answer_without_boxes_has_none(text):
    assert localization.parse_boxes(text) == []


# --- drawing them


def test_each_box_is_drawn_at_its_place_in_its_colour_with_a_labelled_tab():
    boxes = localization.parse_boxes(ANSWER)

    pixels = np.asarray(localization.draw_boxes(_gray(), boxes))

    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert_boxes_drawn(pixels)
    # The tab above the opacity's box holds its label: orange, with dark text on it.
    left, top, _, _ = _px(OPACITY)
    tab = pixels[top - 20 : top - 2, left + 2 : left + 150].reshape(-1, 3)
    assert (tab == PALETTE[0]).all(axis=1).mean() > 0.5
    assert (tab.sum(axis=1) < 100).any()


def test_a_box_at_the_top_edge_has_its_tab_inside_the_image():
    box = Box("apex", 0, 100, 300, 400)

    pixels = np.asarray(localization.draw_boxes(_gray(), [box]))

    tab = pixels[4:18, 82:130].reshape(-1, 3)  # below the box's top edge, inside it
    assert (tab == PALETTE[0]).all(axis=1).mean() > 0.5
    assert (tab.sum(axis=1) < 100).any()  # the label's dark text
    assert (pixels[30, 90:130] == GRAY).all()  # under the tab, the image is left as it was


def test_the_palette_is_okabe_ito_and_repeats_past_its_end():
    assert localization.colour(0) == (230, 159, 0)
    assert localization.colour(len(PALETTE)) == localization.colour(0)


# --- in the page and the exports


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def answered(user):
    """A chest X-ray question and MedGemma's answer with boxes."""
    session = services.session_create(owner=user, model_name="MedGemma demo")
    question = Message.objects.create(
        session=session, role=Message.Role.USER, content=localization.LOCATE_FINDINGS_PROMPT
    )
    Attachment.objects.create(
        owner=user,
        message=question,
        file=ContentFile(_png(_gray()), name="cxr.png"),
        content_type="image/png",
        width=WIDTH,
        height=HEIGHT,
        size_bytes=1,
        label="",
    )
    answer = Message.objects.create(
        session=session, parent=question, role=Message.Role.ASSISTANT, content=ANSWER
    )
    return session, question, answer


@pytest.mark.django_db
def test_the_page_shows_the_boxes_under_the_answer_and_keeps_its_text(client, user, answered):
    session, _, answer = answered
    client.force_login(user)

    page = client.get(f"/chat/{session.pk}/").content.decode()

    url = f"/chat/{session.pk}/messages/{answer.pk}/boxes.png"
    assert '<details class="answer-boxes" open>' in page  # toggleable, open at first
    assert "Findings located on the image (2)" in page
    assert f'src="{url}"' in page
    assert "right lower zone opacity</li>" in page and "cardiomegaly</li>" in page
    assert "box_2d" in html.unescape(page)  # the raw answer is still there
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert_boxes_drawn(np.asarray(Image.open(io.BytesIO(response.content))))


@pytest.mark.django_db
def test_the_boxes_image_is_nobody_elses_and_absent_without_boxes(
    client, user, other_user, answered
):
    session, question, answer = answered
    client.force_login(other_user)
    assert client.get(f"/chat/{session.pk}/messages/{answer.pk}/boxes.png").status_code == 404

    client.force_login(user)
    plain = Message.objects.create(
        session=session,
        parent=question,
        role=Message.Role.ASSISTANT,
        content="No boxes.",
        active=False,
    )
    assert client.get(f"/chat/{session.pk}/messages/{plain.pk}/boxes.png").status_code == 404
    assert client.get(f"/chat/{session.pk}/messages/{question.pk}/boxes.png").status_code == 404


@pytest.mark.django_db
def test_boxes_about_one_of_several_images_are_not_drawn(client, user, answered):
    session, question, answer = answered
    Attachment.objects.create(
        owner=user,
        message=question,
        file=ContentFile(_png(_gray()), name="lateral.png"),
        content_type="image/png",
        width=WIDTH,
        height=HEIGHT,
        size_bytes=1,
    )
    client.force_login(user)

    assert "answer-boxes" not in client.get(f"/chat/{session.pk}/").content.decode()


@pytest.mark.django_db
def test_a_follow_up_answer_draws_on_the_image_of_the_question_before(client, user, answered):
    session, _, answer = answered
    follow_up = Message.objects.create(
        session=session, parent=answer, role=Message.Role.USER, content="And the heart?"
    )
    again = Message.objects.create(
        session=session, parent=follow_up, role=Message.Role.ASSISTANT, content=ANSWER
    )
    client.force_login(user)

    response = client.get(f"/chat/{session.pk}/messages/{again.pk}/boxes.png")

    assert response.status_code == 200


@pytest.mark.django_db
def test_the_markdown_export_holds_the_overlaid_image_after_the_answer(answered):
    session, _, _ = answered

    text = exports.session_export(session, "md").content.decode()

    caption = (
        "Findings located on the image (the attached image): "
        "1. right lower zone opacity; 2. cardiomegaly"
    )
    assert re.search(re.escape(ANSWER.split("\n")[0]) + r"[\s\S]*!\[" + re.escape(caption), text)
    (ref,) = re.findall(r"\]\[(boxes-\d+)\]", text)
    (data,) = re.findall(rf"^\[{ref}\]: data:image/jpeg;base64,(\S+)$", text, re.M)
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.width == exports.MARKDOWN_LOCATED_PX
    assert_boxes_drawn(np.asarray(image.convert("RGB")), tolerance=40)  # JPEG blurs edges


@pytest.mark.django_db
def test_the_pdf_export_holds_the_overlaid_image_and_its_caption(answered):
    session, _, _ = answered

    reader = PdfReader(io.BytesIO(exports.session_export(session, "pdf").content))

    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Findings located on the image" in text and "cardiomegaly" in text
    images = [image.image for page in reader.pages for image in page.images]
    # The question's thumbnail is the plain X-ray; the answer's image has the boxes.
    overlaid = [i for i in images if np.asarray(i.convert("RGB")).std() > 5]
    assert len(overlaid) == 1
    assert_boxes_drawn(np.asarray(overlaid[0].convert("RGB")), tolerance=40)


@pytest.mark.django_db
def test_the_locate_findings_quick_prompt_asks_in_the_notebooks_words(client, user):
    session = services.session_create(owner=user, model_name="MedGemma demo")
    client.force_login(user)

    page = client.get(f"/chat/{session.pk}/").content.decode()

    prompts = [html.unescape(p) for p in re.findall(r'data-prompt="([^"]*)"', page)]
    assert localization.LOCATE_FINDINGS_PROMPT in prompts
    assert "[y0, x0, y1, x1]" in localization.LOCATE_FINDINGS_PROMPT
    assert 'The object needs a "box_2d" and "label" key.' in localization.LOCATE_FINDINGS_PROMPT
