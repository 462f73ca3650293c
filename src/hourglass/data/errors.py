"""The one exception type of ``hourglass.data``."""

from __future__ import annotations


class DataError(ValueError):
    """Bad data or settings; the message names the file, the record index or the array, and what was expected."""
