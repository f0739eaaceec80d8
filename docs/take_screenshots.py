"""Take the README's screenshots: the chat page at desktop and phone width, the
radiology viewer on a CT series, the composer's range of slices, a whole-slide
image's overview and patches in a question (docs/screenshots/), and an answer's
localization boxes drawn on a chest X-ray.

    .venv/bin/python docs/take_screenshots.py          # all of them
    .venv/bin/python docs/take_screenshots.py viewer   # the viewer's two only
    .venv/bin/python docs/take_screenshots.py boxes    # the localization boxes only

Starts `medserver -m demo` on a free loopback port with a throwaway data dir,
saves one conversation through chat.services (the demo model writes random
words, so the answers shown are written here, with chat.services.answer_finish
in a `manage.py shell` on the same data dir), and photographs the page as the
normal views render it, with Debian's Chromium.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dicom_files import ct_phantom, zip_of  # noqa: E402
from tests.radiograph_files import FINDINGS, chest_radiograph  # noqa: E402
from tests.support.browser import CHROMIUM, sign_in  # noqa: E402
from tests.support.server import PASSWORD, start_server  # noqa: E402

QUESTION = (
    "58-year-old man, 2 hours of crushing central chest pain radiating to the left arm, "
    "sweating. Chest X-ray attached. Differential and first steps?"
)
THINKING = """The presentation is classic for an acute coronary syndrome until proven otherwise.

1. **Time-critical causes first:** STEMI/NSTEMI, aortic dissection, pulmonary embolism,
   tension pneumothorax.
2. The radiograph: look at the mediastinal width (dissection) and for a pneumothorax.
3. Then the first hour: ECG within 10 minutes, troponin, aspirin unless dissection is suspected."""
ANSWER = """## Most likely: acute coronary syndrome

Until an ECG says otherwise, treat this as **ACS**. Other causes that must not be missed:

| Diagnosis | For | Check |
|---|---|---|
| STEMI / NSTEMI | Typical pain, radiation, sweating | 12-lead ECG, serial troponin |
| Aortic dissection | Tearing pain, pulse deficit | BP in both arms, CT angiography |
| Pulmonary embolism | Pleuritic pain, hypoxia | Wells score, CTPA |

### First steps

1. 12-lead ECG **within 10 minutes**; repeat if the first is normal.
2. IV access, bloods including high-sensitivity troponin.
3. Aspirin 300 mg chewed, unless dissection is suspected.
4. Oxygen only if SpO₂ < 90%.

> The radiograph shows no widened mediastinum and no pneumothorax."""

CRAFT = """
import io
from django.core.files.uploadedfile import SimpleUploadedFile
from django.contrib.auth.models import User
from PIL import Image, ImageDraw, ImageFilter
from chat import services
from inference.engine import Finished

user = User.objects.create_superuser("dr-grey", "grey@clinic.example", {password!r})
for title in ("Hyponatraemia work-up", "Warfarin and clarithromycin", "Fever, 14 months"):
    older = services.session_create(owner=user, model_name="demo")
    services.session_rename(session=older, title=title)
session = services.session_create(owner=user, model_name="MedServer demo")

# A stand-in radiograph: dark lungs, a brighter mediastinum and ribs, blurred.
image = Image.new("L", (640, 640), 20)
draw = ImageDraw.Draw(image)
draw.ellipse((90, 110, 300, 560), fill=70)
draw.ellipse((340, 110, 550, 560), fill=70)
draw.rectangle((280, 60, 360, 600), fill=170)
draw.ellipse((300, 330, 470, 520), fill=150)
for y in range(150, 560, 42):
    draw.arc((70, y - 60, 320, y + 60), 200, 340, fill=120, width=8)
    draw.arc((320, y - 60, 570, y + 60), 200, 340, fill=120, width=8)
out = io.BytesIO()
image.filter(ImageFilter.GaussianBlur(6)).save(out, format="PNG")
upload = SimpleUploadedFile("chest.png", out.getvalue(), content_type="image/png")
attachment = services.attachment_create(owner=user, upload=upload)

question, answer = services.message_send(
    session=session, content={question!r}, attachment_ids=[attachment.pk]
)
services.answer_finish(
    answer.pk, content={answer!r}, thinking={thinking!r},
    finished=Finished("stop", 412, 236, 0.4, 5.9), engine="transformers", thinking_ms=6400,
)
"""


# MedGemma 1.5's answer to the Locate findings prompt, in the format of Google's
# localization notebook: reasoning, then the boxes of the findings
# tests.radiograph_files.chest_radiograph draws.
BOXES_JSON = ",\n".join(
    f'  {{"box_2d": {list(box)}, "label": "{label}"}}' for label, box in FINDINGS.items()
)
BOXES_ANSWER = f"""The image is a frontal (PA) chest radiograph, the "L" marker at the upper right.

- In the **right lower zone** there is a patchy airspace opacity, the right heart \
border preserved: consolidation.
- In the **left upper zone**, a well-defined round nodule of about 1 cm.
- The **left costophrenic angle** is blunted with a meniscus: a small pleural effusion.
- The heart size and the mediastinum are within normal limits; no pneumothorax.

Final Answer:
```json
[
{BOXES_JSON}
]
```"""

FINISH_AS_MEDGEMMA = """
from chat import services
from inference.engine import Finished

services.answer_finish(
    {answer_id}, content={content!r}, thinking="",
    finished=Finished("stop", 1342, 188, 0.5, 6.2), engine="transformers",
)
"""

MODES = ("all", "viewer", "boxes")


def main(which: str = "all") -> None:
    if which not in MODES:
        sys.exit(f"take_screenshots.py: unknown screenshots {which!r}; choose one of {MODES}")
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory(prefix="medserver-screens-") as data_dir:
        server = start_server(Path(data_dir))
        try:
            texts = {"question": QUESTION, "answer": ANSWER, "thinking": THINKING}
            server.manage("shell", "-c", CRAFT.format(password=PASSWORD, **texts))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                if which == "all":
                    shoot(browser, server, docs / "screenshot-desktop.png", 1440, 1100, 1, True)
                    shoot(browser, server, docs / "screenshot-phone.png", 360, 780, 2, False)
                    shoot_slide(browser, server, docs / "screenshots" / "slide-patches.png")
                if which in ("all", "viewer"):
                    shoot_viewer(browser, server, docs, Path(data_dir))
                if which in ("all", "boxes"):
                    shoot_boxes(browser, server, docs / "screenshot-boxes.png", Path(data_dir))
                browser.close()
        finally:
            server.stop()
    print("wrote the screenshots in docs/")


def shoot_slide(browser, server, path: Path) -> None:
    """A generated slide (tests/slide_files.py) attached in a new chat and sent: the
    question shows the overview with the patches outlined, then the patches."""
    from tests.slide_files import tissue_slide

    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, device_scale_factor=1, color_scheme="dark"
    )
    page = context.new_page()
    sign_in(page, server, "dr-grey")
    page.get_by_role("button", name="New chat").click()
    with tempfile.TemporaryDirectory() as folder:
        slide = Path(folder) / "slide.svs"
        slide.write_bytes(tissue_slide()[0])
        page.locator("#image-input").set_input_files(str(slide))
        expect(page.locator("#pending-attachments .is-overview")).to_have_count(1, timeout=60_000)
    page.get_by_label("Message").fill(
        "Colon biopsy. Describe the tissue in these patches for a teaching file."
    )
    page.get_by_role("button", name="Send").click()
    question = page.locator('[data-message-role="user"]').last
    expect(question.locator(".message-thumb")).to_have_count(7)
    page.wait_for_timeout(500)
    path.parent.mkdir(exist_ok=True)
    question.screenshot(path=str(path))
    context.close()


def shoot(browser, server, path: Path, width: int, height: int, scale: int, open_thinking: bool):
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=scale,
        color_scheme="dark",
        is_mobile=width < 600,
        has_touch=width < 600,
    )
    page = context.new_page()
    sign_in(page, server, "dr-grey")
    expect(page.locator(".thinking summary")).to_have_text("Thought for 6 s")
    if open_thinking:
        page.locator(".thinking summary").click()
    page.locator("#messages").evaluate("m => m.scrollTo({top: 0})")
    page.wait_for_timeout(300)
    page.evaluate("document.getElementById('jump-latest').hidden = true")
    page.screenshot(path=str(path))
    context.close()


def shoot_viewer(browser, server, docs: Path, scratch: Path) -> None:
    """The composer's range of slices of a CT series, then the viewer on a slice
    sent (one with a nodule) in the lung window."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, device_scale_factor=1, color_scheme="dark"
    )
    page = context.new_page()
    sign_in(page, server, "dr-grey")
    page.get_by_role("button", name="New chat").first.click()
    series = scratch / "chest-ct.zip"
    series.write_bytes(zip_of({f"CT/IM{n:04d}.dcm": raw for n, raw in enumerate(ct_phantom(40))}))
    page.locator("#image-input").set_input_files(str(series))
    group = page.locator(".pending-series")
    expect(group.locator(".pending-attachment")).to_have_count(10)
    group.get_by_label("From slice").fill("9")
    expect(group.locator('output[data-for="start"]')).to_have_text("9")
    group.get_by_label("to slice").fill("32")
    expect(group.locator(".pending-attachment").first).to_have_attribute(
        "title", re.compile("^CT slice 9 of 40")
    )
    page.get_by_label("Message").fill("Any pulmonary nodules? Give size and location.")
    page.wait_for_timeout(300)
    page.locator(".composer").screenshot(path=str(docs / "screenshot-series-range.png"))

    group.locator(".pending-attachment a").nth(4).click()
    box = page.locator("#lightbox")
    expect(box).to_have_attribute("data-series", "ready")
    page.keyboard.press("1")
    expect(box).to_have_attribute("data-window-view", "lung")
    page.mouse.move(1300, 120)  # no hover on the image
    page.evaluate("document.activeElement.blur()")  # no focus ring on the bar's first button
    page.wait_for_timeout(300)
    page.screenshot(path=str(docs / "screenshot-viewer.png"))
    context.close()


def shoot_boxes(browser, server, path: Path, scratch: Path) -> None:
    """A chest X-ray sent in a new chat with the Locate findings quick prompt; its
    answer, once the demo model has written it, saved as MedGemma 1.5's answer with
    boxes (BOXES_ANSWER); the page reloaded shows them drawn on the image."""
    context = browser.new_context(
        viewport={"width": 1100, "height": 1500}, device_scale_factor=1, color_scheme="dark"
    )  # tall enough for the whole answer above the composer
    page = context.new_page()
    sign_in(page, server, "dr-grey")
    page.get_by_role("button", name="New chat").first.click()
    radiograph = scratch / "chest-pa.png"
    radiograph.write_bytes(chest_radiograph())
    page.locator("#image-input").set_input_files(str(radiograph))
    expect(page.locator("#pending-attachments .pending-attachment")).to_have_count(1)
    page.locator(".suggestion", has_text="Locate findings").click()
    page.get_by_role("button", name="Send").click()
    answer = page.locator('[data-message-role="assistant"]').last
    # Written and saved by the demo model first, so nothing overwrites the answer below.
    finished = re.compile("^(complete|stopped)$")
    expect(answer).to_have_attribute("data-status", finished, timeout=120_000)
    answer_id = int(answer.get_attribute("data-message-id"))
    server.manage(
        "shell", "-c", FINISH_AS_MEDGEMMA.format(answer_id=answer_id, content=BOXES_ANSWER)
    )

    page.reload()
    answer = page.locator(f"#message-{answer_id}")
    expect(answer.locator(".answer-boxes-legend li")).to_have_count(len(FINDINGS))
    expect(answer.locator(".answer-boxes-image")).to_have_js_property("complete", True)
    page.locator("#messages").evaluate("m => m.scrollTo({top: m.scrollHeight})")
    page.evaluate("document.getElementById('jump-latest').hidden = true")
    page.mouse.move(5, 5)  # no hover on the answer's actions
    page.wait_for_timeout(300)
    answer.screenshot(path=str(path))
    context.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
