"""The one refusal of the imaging library: a file that cannot be given to the model as it is.

Its text names the file by its place ("Upload 2", "upload 2, file 4"), says why,
and is shown to the clinician as it is. The subclasses (too large, wrong
format, a zip, DICOM or PDF that cannot be read) let an API answer with the
status that fits.
"""


class ImageRejected(Exception):
    """An image, DICOM file, zip or document that cannot be attached as it is."""
