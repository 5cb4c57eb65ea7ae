"""Everything the server keeps: the SQLite database and the content-addressed model files.

Every SQL statement of the server lives in this package, one module per
group of tables; the domain modules above it decide, these only read and
write. :class:`Store` is the database connection (:mod:`.database`),
migrated on opening (:mod:`.migrations`).
"""

from .database import BUSY_TIMEOUT_MS, Store

__all__ = ["BUSY_TIMEOUT_MS", "Store"]
