"""The table model (app/tables.py): columns, specs and download names, on small known inputs."""

from __future__ import annotations

import pytest

from app.efficiency_view import EFFICIENCY_COLUMNS
from app.queue_view import PRESSURE_COLUMNS, QUEUE_COLUMNS, WAIT_COLUMNS
from app.tables import (
    CURRENT_COLUMNS,
    TOTAL_COLUMNS,
    Column,
    download_stem,
    slug,
    table_spec,
    usage_columns,
)
from collector.observables import HELD

ALL = {"current": CURRENT_COLUMNS, "total": TOTAL_COLUMNS, "queue": QUEUE_COLUMNS,
       "pressure": PRESSURE_COLUMNS, "waits": WAIT_COLUMNS, "efficiency": EFFICIENCY_COLUMNS}


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_downloaded_header_names_one_column_and_its_unit(name: str) -> None:
    """A CSV header is the column's words and unit: every one must differ, or a
    spreadsheet cannot tell the columns apart."""
    headers = [f"{c.header} ({c.unit})" if c.unit else c.header for c in ALL[name]]
    assert len(set(headers)) == len(headers), headers
    assert len({c.id for c in ALL[name]}) == len(ALL[name])


def test_usage_columns_follow_the_observables() -> None:
    ids = [c.id for c in usage_columns("total")]
    assert ids[0] == "user"
    for o in HELD:
        assert o.key in ids
        assert (f"{o.key}_share" in ids) == bool(o.limit_key)
    share = next(c for c in TOTAL_COLUMNS if c.id == "NCPUS_share")
    assert (share.header, share.unit) == ("CPUs of limit", "%")
    # What is held now is whole for counts; resource-hours keep a decimal.
    now = {c.id: c.decimals for c in CURRENT_COLUMNS}
    assert (now["NCPUS"], now["MEMORY"]) == (0, 1)
    assert {c.id: c.decimals for c in TOTAL_COLUMNS}["NCPUS"] == 1


def test_durations_are_hours_in_the_files() -> None:
    waits = {c.id: c for c in WAIT_COLUMNS}
    assert (waits["median"].kind, waits["median"].unit) == ("duration", "h")
    assert {c.id: c.kind for c in EFFICIENCY_COLUMNS}["flags"] == "flags"


def test_an_unknown_kind_is_refused_with_the_column_named() -> None:
    with pytest.raises(ValueError, match=r"'x'.*'money'"):
        Column("x", "X", kind="money")


def test_the_spec_sets_the_total_apart_and_keeps_the_rows_as_given() -> None:
    rows = [{"user": "b", "NCPUS": 1.25, "is_total": False},
            {"user": "a", "NCPUS": 2.5, "is_total": False},
            {"user": "Total", "NCPUS": 3.75, "is_total": True}]
    spec = table_spec("total-table", TOTAL_COLUMNS, rows, "stem")
    assert [r["user"] for r in spec["rows"]] == ["b", "a"]
    assert spec["total"] == rows[2]
    assert spec["columns"][0] == {"id": "user", "header": "User", "unit": "", "kind": "text",
                                  "decimals": 1}
    assert (spec["id"], spec["stem"]) == ("total-table", "stem")
    assert table_spec("queue-table", QUEUE_COLUMNS, [], "s")["total"] is None


@pytest.mark.parametrize(("text", "expected"), [
    ("HiPerGator", "hipergator"), ("avery-b", "avery-b"), ("UF Research Computing!", "uf-research-computing"),
    ("2026-11-01T00:00-to-2026-11-05T00:00", "2026-11-01t00-00-to-2026-11-05t00-00"), ("//", "x")])
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_the_stem_says_site_qos_range_and_grouping() -> None:
    assert download_stem("HiPerGator", "avery", "7d") == "hipergator_avery_7d_by-user"
    assert download_stem("Lab", "gpu@cl2", "30d", "account") == "lab_gpu-cl2_30d_by-account"
