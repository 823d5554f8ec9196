"""Gallery URLs: the forms `open_gallery` accepts, and how they are shown without a password."""

from __future__ import annotations

import re

URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, a bare file path (faces.db), "
    "postgresql://user[:password]@host[:port]/database (or postgres://...), "
    "libpq keywords (host=... dbname=... user=...)"
)
LIBPQ_KEYWORDS = re.compile(r"\s*[A-Za-z_]+\s*=")
"""How a libpq keyword/value connection string starts ("host=db dbname=faces ...")."""


def redact_url(url: str) -> str:
    """`url` with the password (``user:password@``, ``password=...`` as a URL parameter or a
    keyword, quoted or not) replaced by ***."""
    url = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s]*)", r"\1***", url)
