"""The two ways input is refused: a whole dataset (DataError) or one file (BadImage).

At the bottom of the package, importing nothing, because the image reader (``imaging``), scene
cropping (``scenes``) and every part of ``maskrec.data`` raise them: a home inside ``maskrec.data``
would make importing either error run ``maskrec/data/__init__.py``, and so the whole data package,
from below it. ``maskrec.data`` re-exports both.
"""


class DataError(ValueError):
    """A dataset that cannot be used at all (no images, one class, a bad zip...)."""


class BadImage(Exception):
    """One file that cannot be used; the message is the reason shown to the user."""
