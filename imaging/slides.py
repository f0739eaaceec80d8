"""Whole-slide images (pathology): tissue patches for the model, and an overview for the clinician.

A slide (Aperio SVS, generic tiled TIFF, Hamamatsu NDPI, Leica SCN, Ventana BIF,
Philips TIFF and the other single-file formats OpenSlide reads) is read with
OpenSlide, the way Google's MedGemma 1.5 pathology notebooks sample one
(google-health/medgemma, high_dimensional_pathology_hugging_face and
..._model_garden, which use EZ-WSI's PatchGenerator):

- patches of 896×896 pixels (MedGemma's input size) at a chosen magnification
  (10× as in the notebooks; 5× and 20×, the other levels of the technical
  report, on request), on a non-overlapping grid (stride = patch size);
- tissue detected on a low-magnification view, as EZ-WSI does: the view is
  averaged over each grid cell, and a cell is tissue when its mean luminance is
  at most 80 % of white and above black (glass and empty scan areas are skipped);
- at most as many patches as fit the message (the notebooks take up to 125),
  sampled at random without replacement among the tissue cells (with a fixed
  seed, so one slide always gives the same patches) and kept in their spatial
  order, as the technical report describes;
- an overview of the whole slide with each patch outlined and numbered, for the
  clinician to see where the patches came from (the model gets the patches).

What leaves this module is pixels of the slide's own pyramid and a few facts
(magnification, the patch's place in level-0 pixels). A slide file also carries
associated images, a label (often printed with the patient's name) and a macro
photograph of the whole glass, and properties (file names, dates, users): none
of them is ever read. The overview is drawn from the pyramid, never from the
file's own thumbnail image. The upload is written to a private temporary file
for OpenSlide (which reads files only) and deleted at once.

Plain Python: nothing of Django.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imaging.budget import ImageBudget
from imaging.errors import ImageRejected

PATCH_PX = 896  # MedGemma 1.5's image size, the notebooks' patch size
MAGNIFICATIONS = {"5": 5.0, "10": 10.0, "20": 20.0}
DEFAULT_MAGNIFICATION = "10"  # the notebooks' level
NOTEBOOK_MAX_PATCHES = 125
MAX_SLIDE_PIXELS = 20_000_000_000  # level 0: a 40× scan of a whole slide is 1–10 gigapixels
# A patch read from a level finer than asked is scaled down; without a pyramid
# level near the magnification that read could be huge, so it is bounded.
MAX_READ_PX = 4096
MAX_VIEW_READ_PIXELS = 64_000_000  # the level the overview is made from, read whole
# EZ-WSI's defaults: tissue is darker than 80 % white and brighter than black.
MAX_TISSUE_LUMINANCE = 0.8 * 255
MIN_TISSUE_LUMINANCE = 1.0
# The longest side of the low-magnification view tissue is found on, which the
# clinician sees as the overview: a grid cell is tens of pixels there on a whole slide.
VIEW_PX = 1024
SEED = 0
# How slide files are known: TIFF's byte orders (classic and BigTIFF), then names.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".scn", ".bif", ".svslide", ".czi")
# Okabe–Ito orange: visible on pink and purple stains.
_OUTLINE = (230, 159, 0)


class SlideRejected(ImageRejected):
    """A whole-slide image that cannot be attached as it is."""


@dataclass(frozen=True)
class Patch:
    png: bytes
    label: str
    facts: dict


@dataclass(frozen=True)
class SlidePatches:
    """What one slide gives a message: its patches, the overview and the notices."""

    patches: list[Patch]
    overview_png: bytes
    overview_size: tuple[int, int]
    overview_label: str
    notices: list[str]


def is_slide(raw: bytes, filename: str = "") -> bool:
    """Whether `raw` may be a whole-slide image: a TIFF (SVS, NDPI and most others
    are), or a file named as one."""
    return raw[:4] in _TIFF_MAGIC or PurePath(filename.lower()).suffix in SUFFIXES


def patches_for_message(
    raw: bytes,
    *,
    name: str,
    budget: ImageBudget,
    answer_tokens: int,
    other_images: int = 0,
    magnification: str = DEFAULT_MAGNIFICATION,
) -> SlidePatches:
    """Read the slide `raw` and return the tissue patches at `magnification` (a key
    of MAGNIFICATIONS) that fit one message beside `other_images`, with an
    overview showing where they are. `name` says which upload it is in messages.

    Raise SlideRejected when it is no slide OpenSlide reads, is too large, has no
    magnification level the patches can be read at, shows no tissue, or no image
    fits in the message.
    """
    room = min(budget.room(answer_tokens, other_images), NOTEBOOK_MAX_PATCHES)
    if room <= 0:
        raise SlideRejected(budget.no_room(answer_tokens))
    target = MAGNIFICATIONS.get(magnification, MAGNIFICATIONS[DEFAULT_MAGNIFICATION])
    import openslide  # loaded when a slide comes, not with every page of the site

    handle, path = tempfile.mkstemp(prefix="medserver-slide-")  # private: mode 600
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(raw)
        try:
            slide = openslide.OpenSlide(path)
        except (openslide.OpenSlideError, OSError, ValueError):
            raise SlideRejected(
                f"{name} could not be read as a whole-slide image (SVS, tiled TIFF, NDPI "
                "and the other formats OpenSlide reads); a plain TIFF picture can be "
                "saved as PNG or JPEG instead."
            ) from None
        try:
            return _sample(slide, name, target, room, budget, answer_tokens)
        except openslide.OpenSlideError:
            raise SlideRejected(f"{name} is damaged: part of it could not be read.") from None
        finally:
            slide.close()
    finally:
        os.unlink(path)


def _sample(slide, name, target, room, budget, answer_tokens) -> SlidePatches:
    width, height = slide.dimensions
    if width * height > MAX_SLIDE_PIXELS:
        raise SlideRejected(
            f"{name} has {width:,}×{height:,} pixels; at most "
            f"{MAX_SLIDE_PIXELS / 1e9:.0f} gigapixels are read."
        )
    native = _native_magnification(slide)
    notices = []
    if native is None:
        # Nothing says how fine the scan is: its full resolution is used as it is.
        native = target
        notices.append(
            f"{name} does not say its magnification; patches were taken at its full resolution."
        )
    elif native < target:
        notices.append(
            f"{name} was scanned at {native:g}×; patches were taken at that, not {target:g}×."
        )
        target = native
    downsample = native / target
    cell = PATCH_PX * downsample  # a patch's side in level-0 pixels
    columns, rows = int(width // cell), int(height // cell)
    if columns == 0 or rows == 0:
        raise SlideRejected(f"{name} is smaller than one patch ({PATCH_PX} pixels at {target:g}×).")
    # One low-magnification view from the pyramid serves the tissue mask and the
    # overview. OpenSlide makes it from the whole of the closest level: a slide
    # without a small enough level would be read whole, so it is refused.
    level = slide.get_best_level_for_downsample(max(width, height) / VIEW_PX)
    level_width, level_height = slide.level_dimensions[level]
    if level_width * level_height > MAX_VIEW_READ_PIXELS:
        raise SlideRejected(
            f"{name} has no low-resolution level ({level_width:,}×{level_height:,} pixels at "
            "its smallest), so it cannot be read safely; save it as a pyramidal slide."
        )
    view = _on_white(slide.get_thumbnail((VIEW_PX, VIEW_PX)))
    tissue = _tissue_cells(view, slide.dimensions, columns, rows, cell)
    if not tissue:
        raise SlideRejected(f"{name} shows no tissue: only glass or empty scan area was found.")
    chosen = sorted(random.Random(SEED).sample(tissue, k=min(room, len(tissue))))
    if len(chosen) < len(tissue):
        notices.append(
            f"{name}: {len(tissue)} tissue patches at {target:g}×, {len(chosen)} attached "
            f"(the most that {budget.what_limits(answer_tokens)})."
        )
    level = slide.get_best_level_for_downsample(downsample)
    level_downsample = slide.level_downsamples[level]
    side = round(cell / level_downsample)
    if side > MAX_READ_PX:
        raise SlideRejected(
            f"{name} has no pyramid level near {target:g}×; choose a higher magnification."
        )
    patches = []
    for number, (row, column) in enumerate(chosen, 1):
        x, y = round(column * cell), round(row * cell)
        region = slide.read_region((x, y), level, (side, side))
        picture = _on_white(region).resize((PATCH_PX, PATCH_PX), Image.Resampling.LANCZOS)
        facts = {
            "kind": "slide patch",
            "magnification": target,
            "patch": number,
            "patches": len(chosen),
            "region": [x, y, round(cell), round(cell)],  # level-0 pixels
        }
        label = f"Slide patch {number} of {len(chosen)} ({target:g}×)"
        patches.append(Patch(_png(picture), label, facts))
    overview = _overview(view, slide.dimensions, chosen, cell)
    overview_label = (
        f"Slide overview: {len(chosen)} patch{'es' if len(chosen) > 1 else ''} at {target:g}× "
        "outlined (not sent to the model)"
    )
    return SlidePatches(patches, _png(overview), overview.size, overview_label, notices)


def _native_magnification(slide) -> float | None:
    """The scan's magnification: as the file states it, else from its pixel size
    (10× is about 1 µm a pixel, EZ-WSI's scale)."""
    import openslide

    power = slide.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    try:
        if power and float(power) > 0:
            return float(power)
        mpp = float(slide.properties.get(openslide.PROPERTY_NAME_MPP_X) or 0)
    except ValueError:
        return None
    return round(10.0 / mpp, 2) if mpp > 0 else None


def _tissue_cells(view, dimensions, columns: int, rows: int, cell: float) -> list[tuple[int, int]]:
    """The (row, column) of the grid cells that hold tissue in the slide's `view`, row by row."""
    scale = view.width / dimensions[0]
    view = view.convert("L")
    # Only the area the grid covers, then one pixel per cell, each the mean of its area.
    right, bottom = max(1, round(columns * cell * scale)), max(1, round(rows * cell * scale))
    covered = view.crop((0, 0, right, bottom))
    means = np.asarray(covered.resize((columns, rows), Image.Resampling.BOX), dtype=np.float32)
    found = (means <= MAX_TISSUE_LUMINANCE) & (means >= MIN_TISSUE_LUMINANCE)
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(found), strict=True)]


def _overview(view, dimensions, chosen: list[tuple[int, int]], cell: float) -> Image.Image:
    """The slide's `view` with each chosen patch outlined and numbered."""
    picture = view.copy()
    scale = picture.width / dimensions[0]
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(10, min(24, round(cell * scale / 3))))
    line = max(2, round(picture.width / 200))  # still seen on a 200-px thumbnail
    for number, (row, column) in enumerate(chosen, 1):
        left, top = column * cell * scale, row * cell * scale
        box = (left, top, left + cell * scale - 1, top + cell * scale - 1)
        draw.rectangle(box, outline=_OUTLINE, width=line)
        draw.text((left + line + 2, top + line + 1), str(number), fill=_OUTLINE, font=font)
    return picture


def _on_white(region: Image.Image) -> Image.Image:
    """An RGB image: OpenSlide marks what was not scanned as transparent; it is glass."""
    if region.mode != "RGBA":
        return region.convert("RGB")
    white = Image.new("RGB", region.size, (255, 255, 255))
    white.paste(region, mask=region.getchannel("A"))
    return white


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    # Pixels only. Stained tissue is grainy: the lightest compression is 4–5 times
    # faster than the default and about a tenth larger.
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()
