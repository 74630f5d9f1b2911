"""Customer ids derived from personal identifiers (an email), so the raw value is never stored as an id.

Why: order exports such as Shopify's carry no customer id, only the buyer's email; keeping the email as the
customer id would put it in every Redis key, transition and log line (docs/privacy.md). The pseudonym is
`cust-` + the first 32 hex digits of sha256 over a fixed label and the trimmed, lower-cased value: the same
email always gives the same id (so imports and live events can join when producers use this function),
different emails different ids. It is pseudonymisation, not anonymisation: whoever holds a list of emails
can recompute the ids, so the ids stay personal data.
"""

from __future__ import annotations

import hashlib
from typing import Final

LABEL: Final = b"segstream-customer-v1\x1f"


def pseudonym(value: str) -> str:
    """`cust-<32 hex>` for an identifier such as an email (trimmed and lower-cased first)."""
    return "cust-" + hashlib.sha256(LABEL + value.strip().lower().encode()).hexdigest()[:32]
