"""Search's keys and terms (leadrelay/search.py) and speed to contact's histogram (speed.py)."""

from __future__ import annotations

import sqlite3

import pytest

from leadrelay import search, speed


def test_search_keys_of_a_lead_cover_each_word_email_phone_and_external_id() -> None:
    lead = {
        "name": "Jan van der Berg",
        "email": "Jan@Example.com",
        "phone": "+1 555 0100",
        "external_id": "CRM-7",
    }
    assert search.lead_keys(lead) == {
        "jan van der berg",
        "van der berg",
        "der berg",
        "berg",
        "jan@example.com",
        "15550100",
        "5550100",
        "0100",
        "crm-7",
    }


def test_search_keys_fold_case_accents_and_spaces_and_skip_blank_fields() -> None:
    assert search.lead_keys({"name": "  ZOË   Müller ", "email": None, "phone": ""}) == {
        "zoe muller",
        "muller",
    }
    assert search.lead_keys({"name": ""}) == set()  # an erased lead is found by nothing


def test_search_keys_of_a_phone_in_one_group_allow_for_its_country_code() -> None:
    keys = search.lead_keys({"name": "x", "phone": "+15550100"})
    assert {"15550100", "5550100", "550100", "50100"} <= keys
    assert "5550100" not in search.lead_keys({"name": "x", "phone": "15550100"})


def test_search_query_terms_add_the_digits_of_a_phone_number() -> None:
    assert search.query_terms("555-0100") == ["555-0100", "5550100"]
    assert search.query_terms(" Müller ") == ["muller"]
    assert search.query_terms("   ") == []
    assert search.query_terms("a" * 300) == ["a" * search.MAX_KEY]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("berg", True),
        ("JAN V", True),
        ("der b", True),
        ("an van", False),  # inside a word: keys match from a word's start
        ("jan@ex", True),
        ("555 01", True),
        ("(555) 0100", True),
        ("crm-", True),
        ("example.com", False),
    ],
)
def test_search_matches_from_the_start_of_a_key(query: str, found: bool) -> None:
    lead = {"name": "Jan van der Berg", "email": "jan@example.com", "phone": "+1 555 0100"}
    keys = search.lead_keys({**lead, "external_id": "CRM-7"})
    assert search.matches(search.query_terms(query), keys) is found


def test_speed_buckets_in_sql_agree_with_python() -> None:
    conn = sqlite3.connect(":memory:")
    for seconds in [0, 0.4, 1, 1.5, 59.9, 60, 61, 3600, 86400 * 3, 86400 * 200]:
        (in_sql,) = conn.execute(f"SELECT {speed.bucket_sql(':s')}", {"s": seconds}).fetchone()
        assert in_sql == speed.bucket_of(seconds), seconds
        low, high = speed.bounds(in_sql)
        assert low <= seconds < high or in_sql == len(speed.EDGES)


def test_speed_median_is_within_a_tenth_of_the_exact_one() -> None:
    times = [30, 45, 90, 120, 300, 600, 3600, 7200, 86400]
    counts: dict[int, int] = {}
    for t in times:
        counts[speed.bucket_of(t)] = counts.get(speed.bucket_of(t), 0) + 1
    median = speed.median(counts.items())
    assert median is not None and abs(median - 300) <= 30
    assert speed.median([]) is None
    assert speed.median([(speed.bucket_of(100), 0)]) is None
