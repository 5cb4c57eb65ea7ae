"""Shared by the integration tests: the unit tests' receipt builders and tamper cases importable.

The audit-page differential (``test_audit_page.py``) checks the browser
against every case of ``tests/unit/tamper_cases.py``, which builds on
``tests/unit/receipt_helpers.py``; this folder itself (``browser.py``,
``audit_batch.py``) is importable from ``server/`` because pytest puts a
conftest's folder on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_UNIT = str(Path(__file__).resolve().parents[1] / "unit")
if _UNIT not in sys.path:
    sys.path.append(_UNIT)
