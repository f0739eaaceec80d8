"""A chest radiograph for screenshots and tests, drawn with numpy and Pillow: no
patient's image is needed, and where its findings are is known exactly."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# What chest_radiograph() draws, and where: boxes as MedGemma 1.5 gives them,
# [y0, x0, y1, x1] from 0 to 1000 (imaging.localization).
FINDINGS = {
    "right lower zone consolidation": (535, 165, 670, 385),
    "left upper zone nodule": (262, 662, 338, 738),
    "left pleural effusion": (615, 700, 765, 850),
}


def chest_radiograph(side: int = 720) -> bytes:
    """A stand-in frontal chest radiograph, a grayscale PNG `side` pixels square, drawn
    from shapes: the neck and chest wall, two lungs with vessels and ribs, the
    mediastinum, aortic knob and heart, the domes of the diaphragm and a gastric
    bubble, and the three FINDINGS."""
    v, u = np.mgrid[0:side, 0:side] / side  # down and across, 0..1
    rng = np.random.default_rng(17)  # the same picture every time
    image = np.full((side, side), 10.0)  # air

    # The neck widening into the shoulders; soft tissue brighter towards the abdomen.
    rise = np.clip((v - 0.02) / 0.16, 0, 1)
    body = np.abs(u - 0.5) < 0.09 + 0.39 * rise * rise * (3 - 2 * rise)
    image[body] = (95 + 60 * np.clip((v - 0.55) / 0.2, 0, 1))[body]

    # The lungs, the patient's right on the image's left, down to the diaphragm.
    right = (((u - 0.31) / 0.16) ** 2 + ((v - 0.47) / 0.36) ** 2 < 1) & (
        v < 0.70 + 0.06 * ((u - 0.31) / 0.16) ** 2
    )
    left = (((u - 0.69) / 0.16) ** 2 + ((v - 0.49) / 0.36) ** 2 < 1) & (
        v < 0.73 + 0.06 * ((u - 0.69) / 0.16) ** 2
    )
    heart = ((u - 0.55) / 0.165) ** 2 + ((v - 0.64) / 0.12) ** 2 < 1
    lungs = (right | left) & ~heart
    image[lungs] = 38 + 30 * v[lungs]  # denser towards the bases

    bones = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(bones)
    # Vessels fanning out from each hilum, thinner as they go.
    for (x0, y0), outwards in (((0.40, 0.48), -1), ((0.60, 0.49), 1)):
        for angle in np.linspace(-1.2, 1.4, 9):
            x, y, width = x0, y0, 7
            for _ in range(6):
                bend = angle + rng.normal(0, 0.15)
                nx, ny = x + outwards * 0.035 * np.cos(bend), y + 0.035 * np.sin(bend)
                draw.line([(x * side, y * side), (nx * side, ny * side)], fill=22, width=width)
                x, y, width = nx, ny, max(1, width - 1)
    # Posterior ribs, from the spine out and down; clavicles; the humeral heads.
    for k in range(9):
        top, bottom = (0.12 + k * 0.068) * side, (0.32 + k * 0.068) * side
        draw.arc((0.13 * side, top, 0.71 * side, bottom), 185, 265, fill=34, width=11)
        draw.arc((0.29 * side, top, 0.87 * side, bottom), 275, 355, fill=34, width=11)
    for near, middle, far in ((0.46, 0.30, 0.13), (0.54, 0.70, 0.87)):
        clavicle = [
            (near * side, 0.21 * side),
            (middle * side, 0.17 * side),
            (far * side, 0.15 * side),
        ]
        draw.line(clavicle, fill=60, width=16)
    for centre in (0.04, 0.96):
        draw.ellipse(
            ((centre - 0.07) * side, 0.13 * side, (centre + 0.07) * side, 0.27 * side), fill=70
        )
    image += np.asarray(bones, dtype=float) * body

    mediastinum = (np.abs(u - 0.5) < 0.07 + 0.03 * v) & (v > 0.06) & (v < 0.7) & ~lungs & body
    knob = ((u - 0.57) / 0.04) ** 2 + ((v - 0.33) / 0.035) ** 2 < 1
    image[mediastinum | heart | knob] = 170
    spine = (np.abs(u - 0.5) < 0.035) & body
    image[spine] += 7 * (np.sin(v[spine] * 2 * np.pi * 14) > -0.7)  # vertebrae and discs
    image[((u - 0.66) / 0.055) ** 2 + ((v - 0.84) / 0.035) ** 2 < 1] = 70  # gastric bubble

    # The findings.
    haze = np.exp(-(((u - 0.27) / 0.055) ** 2) - ((v - 0.60) / 0.045) ** 2)
    image += right * haze * 70 * (0.7 + 0.3 * rng.random((side, side)))
    image[(u - 0.70) ** 2 + (v - 0.30) ** 2 < 0.018**2] += 75
    image[left & (v > 0.75 - 0.14 * ((u - 0.6) / 0.25) ** 2)] = 140  # fluid, a meniscus

    image += rng.normal(0, 2.5, image.shape)
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "L")
    picture = picture.filter(ImageFilter.GaussianBlur(4))
    marker = ImageFont.load_default(size=round(side / 21))
    ImageDraw.Draw(picture).text((0.9 * side, 0.04 * side), "L", fill=235, font=marker)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
