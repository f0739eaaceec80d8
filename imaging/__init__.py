"""Medical images for the model: photos, DICOM series, zip archives, PDF pages, whole-slide
images (slides), prior studies and their intervals (priors), localization boxes.

A plain library: it imports neither Django nor the site nor any app. What it
needs of the server's configuration (the model's context, an image's tokens,
the per-message image cap, the upload limit) is handed to it as arguments
(`ImageBudget`, `max_bytes`). Everything that leaves it is de-identified by
allow-list. Refusals are `ImageRejected` (imaging.errors), whose text is shown
to the clinician as it is.
"""

from imaging.budget import ImageBudget
from imaging.errors import ImageRejected

__all__ = ["ImageBudget", "ImageRejected"]
