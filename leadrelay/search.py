"""Search: the keys a lead is found by, and the terms a query looks for among them.

A lead is found when one of its keys starts with one of the query's terms.  Keys and terms
are folded the same way (Unicode NFKD without its accents, casefolded, spaces collapsed),
here in Python rather than by each database's own `lower()`, so that both backends find
the same leads.  The keys of "Jan van der Berg", jan@example.com, "+1 555 0100", "CRM-7":

    name       every word onwards: "jan van der berg", "van der berg", "der berg", "berg"
    email      "jan@example.com"
    phone      its digits from each group: "15550100", "5550100", "0100" (and, written
               "+15550100", the digits after one, two and three of them: a country code)
    external   "crm-7"

Keys are stored beside the lead's id in `search_keys`, in buckets of 4,096 lead ids, which
an indexer fills off the intake's path (store/search_index.py); a query walks the buckets
from the newest, so a broad term stops early and a rare one costs a short range a bucket.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

BUCKET_BITS = 12  # lead ids per bucket: 4,096
MAX_QUERY = 200  # characters of a query
MAX_KEY = 100  # characters of a key kept (a longer name is found by its start)
MAX_NAME_WORDS = 4  # keys from a name: its first word onwards, the second onwards, ...
# the highest code point: every string that starts with a term sorts below term + this
TOP = "\U0010ffff"
_DIGITS = re.compile(r"[0-9]+")
_PHONE_LIKE = re.compile(r"[0-9\s()+./-]+")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Text as keys and terms are compared: no accents, casefolded, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare.casefold()).strip()


def bucket(lead_id: int) -> int:
    return lead_id >> BUCKET_BITS


def _phone_keys(phone: str) -> set[str]:
    groups = _DIGITS.findall(phone)
    digits = "".join(groups)
    keys = {"".join(groups[n:]) for n in range(len(groups))}
    if len(groups) == 1 and phone.lstrip().startswith("+"):
        keys |= {digits[n:] for n in (1, 2, 3)}
    return {key for key in keys if len(key) >= 3} | ({digits} if digits else set())


def lead_keys(lead: dict[str, Any]) -> set[str]:
    """The keys `lead` (its name, email, phone and external_id) is found by."""
    keys: set[str] = set()
    name = fold(lead.get("name") or "")
    words = name.split(" ") if name else []
    for n in range(min(len(words), MAX_NAME_WORDS)):
        keys.add(" ".join(words[n:]))
    for field in ("email", "external_id"):
        if lead.get(field):
            keys.add(fold(lead[field]))
    if lead.get("phone"):
        keys |= _phone_keys(lead["phone"])
    return {key[:MAX_KEY] for key in keys if key}


def query_terms(query: str) -> list[str]:
    """The terms a query looks for: the folded query, and its digits alone when it reads
    as a phone number ("555-0100" finds "+1 555 0100")."""
    terms = [fold(query)[:MAX_KEY]]
    if _PHONE_LIKE.fullmatch(query.strip()):
        digits = "".join(_DIGITS.findall(query))
        if digits and digits not in terms:
            terms.append(digits)
    return [term for term in terms if term]


def matches(terms: Iterable[str], keys: Iterable[str]) -> bool:
    """Whether a lead with `keys` is found by `terms` (what the index answers, in Python:
    for the leads not indexed yet)."""
    keys = list(keys)
    return any(key.startswith(term) for term in terms for key in keys)
