"""Receipts (format v1): build, sign, DSSE export/import and offline verification."""

from .build import *  # noqa: F403  (moved here whole; split by job in the next commit)
from .build import __all__ as __all__
