"""Everything the server keeps: the database (SQLite or PostgreSQL) and the model files.

Every SQL statement of the server lives in this package, one module per
group of tables; the domain modules above it decide, these only read and
write. :class:`Store` is the database interface (:mod:`.database`), with an
SQLite (:mod:`.sqlite`) and a PostgreSQL (:mod:`.postgres`) backend, both
migrated on opening by the same migrations (:mod:`.migrations`).
"""

from .database import Connection, Row, Store, StoreIntegrityError, is_database_url, open_store
from .sqlite import BUSY_TIMEOUT_MS, SqliteStore

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Connection",
    "Row",
    "SqliteStore",
    "Store",
    "StoreIntegrityError",
    "is_database_url",
    "open_store",
]
