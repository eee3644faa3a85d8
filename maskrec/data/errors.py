"""The two ways data is refused: a whole dataset (DataError) or one file (BadImage).

Their own module because every other part of ``maskrec.data`` raises one or both, and the parts
import each other only one way (layouts -> zips, cache -> image, ...).
"""


class DataError(ValueError):
    """A dataset that cannot be used at all (no images, one class, a bad zip...)."""


class BadImage(Exception):
    """One file that cannot be used; the message is the reason shown to the user."""
