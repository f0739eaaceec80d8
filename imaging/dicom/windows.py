"""Windows for DICOM images: which stored values become which shades of gray.

A window spreads the values from `low` to `high` (Hounsfield units for CT, after
the modality LUT) over 0..255, clipping the rest. The presets are the usual CT
ones; MEDGEMMA_CT_WINDOWS is the three-window encoding of Google's MedGemma 1.5
CT notebook, one window per colour channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A linear window: values from `low` to `high` are spread over 0..255."""

    name: str
    low: float
    high: float

    @classmethod
    def centred(cls, name: str, center: float, width: float) -> Window:
        return cls(name, center - width / 2, center + width / 2)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Return `values` windowed to 8 bits: at or below `low` 0, at or above `high` 255."""
        scaled = (np.clip(values, self.low, self.high) - self.low) / (self.high - self.low)
        return np.round(scaled * 255.0).astype(np.uint8)

    def facts(self) -> dict:
        return {
            "name": self.name,
            "center": round((self.low + self.high) / 2, 2),
            "width": round(self.high - self.low, 2),
        }


# The usual CT presets, in Hounsfield units (center, width).
PRESETS = {
    "lung": Window.centred("lung", -600, 1500),
    "mediastinum": Window.centred("mediastinum", 50, 350),
    "bone": Window.centred("bone", 400, 1800),
    "brain": Window.centred("brain", 40, 80),
}
# MedGemma 1.5's CT encoding, channel by channel (red, green, blue).
MEDGEMMA_CT_WINDOWS = (
    Window("wide", -1024, 1024),
    Window("soft tissue", -135, 215),
    Window("brain", 0, 80),
)
AUTO = "auto"  # CT: MedGemma's three windows; anything else: the file's own window
FILE = "file"  # the window the file names (WindowCenter/WindowWidth), else its range
WINDOW_CHOICES = {
    AUTO: "Automatic",
    FILE: "As in the file",
    "lung": "Lung (-600/1500)",
    "mediastinum": "Mediastinum (50/350)",
    "bone": "Bone (400/1800)",
    "brain": "Brain (40/80)",
}


def window_label(facts: dict) -> str:
    """Name the window recorded in `facts`, as a clinician would: "lung window"."""
    window = facts.get("window", {})
    name = window.get("name", "")
    if name == "medgemma-ct-rgb":
        return "MedGemma CT windows as RGB"
    if name == "colour":
        return "colour"
    if name == "range":
        return "full range"
    if name == "file":
        return f"window from the file, {window['center']:g}/{window['width']:g}"
    return f"{name} window"
