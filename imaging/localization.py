"""Localization boxes in MedGemma 1.5's answers, drawn on the image they are about.

MedGemma 1.5 localizes findings and anatomy on chest X-rays in the format of
Google's localization notebook (google-health/medgemma,
cxr_anatomy_localization_with_hugging_face): a JSON list of objects, each with a
"box_2d" of [y0, x0, y1, x1] normalised to 0..1000 (top-left, then bottom-right)
and a "label", usually in a ```json fence after "Final Answer:". The answer's
text is kept as written; this module only reads the boxes out of it and draws
them, so the page and the exports show where each finding is.

Plain Python and Pillow: nothing of Django, so the page, the exports and the
tests share it.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# The notebook's instructions, word for word, with its query shape: MedGemma 1.5
# was tuned on this framing, so the quick prompt keeps it.
LOCATE_FINDINGS_PROMPT = (
    "Instructions:\n"
    "The following user query will require outputting bounding boxes. The format of "
    "bounding boxes coordinates is [y0, x0, y1, x1] where (y0, x0) must be top-left corner "
    "and (y1, x1) the bottom-right corner. This implies that x0 < x1 and y0 < y1. Always "
    "normalize the x and y coordinates the range [0, 1000], meaning that a bounding box "
    "starting at 15% of the image width would be associated with an x coordinate of 150. "
    "You MUST output a single parseable json list of objects enclosed into ```json...``` "
    'brackets, for instance ```json[{"box_2d": [800, 3, 840, 471], "label": "car"}, '
    '{"box_2d": [400, 22, 600, 73], "label": "dog"}]``` is a valid output. Now answer to '
    "the user query.\n\n"
    'Remember "left" refers to the patient\'s left side where the heart is and sometimes '
    "underneath an L in the upper right corner of the image.\n\n"
    "Query:\n"
    "Where are the abnormal findings? Don't give a final answer without reasoning. Output "
    'the final answer in the format "Final Answer: X" where X is a JSON list of objects. '
    'The object needs a "box_2d" and "label" key. Answer:'
)

SCALE = 1000  # the notebook's normalisation: 0..1000 on each axis
MAX_BOXES = 32  # more than any answer needs; bounds the work a strange answer causes
_LABEL_LENGTH = 60
# Okabe & Ito's colour-blind-safe palette, the bright ones first: they stand out
# on a grayscale radiograph. Black is left out for the same reason.
PALETTE = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
    (0, 114, 178),  # blue
)
_STARTS = re.compile(r"\[\s*\{")


@dataclass(frozen=True)
class Box:
    """One localized finding: its label and box, normalised to 0..1000."""

    label: str
    y0: float
    x0: float
    y1: float
    x1: float

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box on an image of `width`×`height`: (left, top, right, bottom)."""
        return (
            round(self.x0 * width / SCALE),
            round(self.y0 * height / SCALE),
            round(self.x1 * width / SCALE),
            round(self.y1 * height / SCALE),
        )


def parse_boxes(text: str) -> list[Box]:
    """Return the boxes of the answer `text`: those of its last JSON list holding
    any (the final answer comes after the reasoning), in their order.

    Items without a "box_2d" of four numbers are skipped; coordinates are clamped
    to 0..1000 and each pair put in order; a box with no area is skipped.
    """
    found: list[Box] = []
    decoder = json.JSONDecoder()
    for start in _STARTS.finditer(text):
        try:
            value, _ = decoder.raw_decode(text, start.start())
        except ValueError:
            continue
        boxes = [box for item in value if (box := _box(item)) is not None]
        if boxes:
            found = boxes
    return found[:MAX_BOXES]


def _box(item) -> Box | None:
    if not isinstance(item, dict):
        return None
    coordinates = item.get("box_2d")
    if not isinstance(coordinates, list) or len(coordinates) != 4:
        return None
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates):
        return None
    y0, x0, y1, x1 = (min(max(float(c), 0.0), SCALE) for c in coordinates)
    y0, y1 = sorted((y0, y1))
    x0, x1 = sorted((x0, x1))
    if y1 - y0 <= 0 or x1 - x0 <= 0:
        return None
    label = " ".join(str(item.get("label") or "").split())[:_LABEL_LENGTH]
    return Box(label or "finding", y0, x0, y1, x1)


def colour(index: int) -> tuple[int, int, int]:
    """The colour of the `index`th box (from 0)."""
    return PALETTE[index % len(PALETTE)]


def draw_boxes(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """Return an RGB copy of `image` with each box outlined in its colour and its
    number and label written on a tab of that colour above it (inside the box when
    there is no room above)."""
    drawn = image.convert("RGB")
    width, height = drawn.size
    draw = ImageDraw.Draw(drawn)
    line = max(2, round(min(width, height) / 200))
    font = ImageFont.load_default(size=max(10, round(min(width, height) / 40)))
    for index, box in enumerate(boxes):
        left, top, right, bottom = box.pixels(width, height)
        fill = colour(index)
        draw.rectangle((left, top, right, bottom), outline=fill, width=line)
        text = f"{index + 1}. {box.label}"
        text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
        tab_height = text_bottom - text_top + 2 * line
        # Above the box; inside its top edge when the box starts at the image's top.
        tab_top = top - tab_height if top - tab_height >= 0 else top
        tab = (left, tab_top, left + text_right - text_left + 2 * line, tab_top + tab_height)
        draw.rectangle(tab, fill=fill)
        # Black on every colour of the palette but blue, which takes white.
        ink = (255, 255, 255) if fill == (0, 114, 178) else (0, 0, 0)
        draw.text((left + line - text_left, tab_top + line - text_top), text, fill=ink, font=font)
    return drawn


def overlay_png(raw: bytes, boxes: list[Box]) -> bytes:
    """The image file `raw` with `boxes` drawn on it, as a PNG (pixels only)."""
    with Image.open(io.BytesIO(raw)) as image:
        drawn = draw_boxes(image, boxes)
    out = io.BytesIO()
    drawn.save(out, format="PNG")
    return out.getvalue()
