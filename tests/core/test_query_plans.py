"""The hot paths are served by indexes: no statement of put, lookup or a listing page scans a
table. On PostgreSQL sequential scans are switched off for the EXPLAIN, so a plan that still
reads a whole table (a sequential scan, or an index walked end to end without a condition) has no
index to use; on SQLite, EXPLAIN QUERY PLAN must show no full SCAN of a table."""

import contextlib
import datetime as dt
import json

import pytest
from django.db import connection

from versioned_items import api

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def recorded():
    """(sql, params) of every statement run inside the block, without transaction control."""
    statements = []

    def wrapper(execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield statements


def _full_scans(node):
    """Plan nodes that read a whole table: sequential scans, and index scans with no
    condition on the index (a full walk of the index in its order)."""
    kind = node["Node Type"]
    if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node):
        yield f"{kind} on {node.get('Relation Name')}"
    for child in node.get("Plans", []):
        yield from _full_scans(child)


def table_scans(sql, params):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            return list(_full_scans(plan[0]["Plan"]))
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        details = [row[-1] for row in cursor.fetchall()]
        return [
            d
            for d in details
            if d.startswith("SCAN ") and "CONSTANT ROW" not in d and not d.startswith("SCAN (")
        ]


FILLER = 3000


def add_filler():
    """Thousands of rows written in bulk, and fresh planner statistics: on a table of a few
    dozen rows PostgreSQL may rightly prefer reading it all, which says nothing about scale."""
    from django.db.models import OuterRef, Subquery
    from django.utils import timezone

    from versioned_items.models import Node, Version, direct_writes

    parent = api.create_node("filler")
    Node.objects.bulk_create(Node(path=f"filler/n{i:05}", depth=2, parent=parent) for i in range(FILLER))
    now = timezone.now()
    nodes = Node.objects.filter(parent=parent)
    Version.objects.bulk_create(Version(node=n, size=1, mtime=now) for n in nodes)
    newest = Version.objects.filter(node=OuterRef("pk")).values("serial")[:1]
    with direct_writes():  # filler without statistics: only the plans are looked at
        nodes.update(current=Subquery(newest))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


@pytest.fixture
def populated():
    add_filler()
    for i in range(30):
        api.put(f"plan/d{i % 5}/f{i}", b"x%d" % i, attributes={"n": str(i)})
    api.put("plan/d0/f0", b"again")


def assert_no_scans(statements):
    offenders = {sql: scans for sql, params in statements if (scans := table_scans(sql, params))}
    assert offenders == {}


def test_put_uses_indexes(populated):
    with recorded() as statements:
        api.put("plan/d1/f1", b"new content")
        api.put("plan/new/deep/file", b"new node")
    assert_no_scans(statements)


def test_lookup_uses_indexes(populated):
    with recorded() as statements:
        api.lookup("plan/d0/f0")
        api.lookup("plan/d0/f0", before=dt.datetime.now(dt.UTC))
    assert_no_scans(statements)


def test_listing_page_uses_indexes(populated):
    with recorded() as statements:
        api.list_latest("plan", delimiter="/", limit=3)
        api.list_latest("plan", limit=3, marker="plan/d1")
    assert_no_scans(statements)


def test_the_detector_sees_a_scan(populated):
    """Guard against a detector that never fires: muser has no index."""
    from versioned_items.models import Version

    with recorded() as statements:
        list(Version.objects.filter(muser="nobody"))
    assert table_scans(*statements[0])


def _rows_read(plan, table):
    """Rows the plan's scans of ``table`` returned, over all their loops (EXPLAIN ANALYZE)."""
    rows = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == table else 0
    return rows + sum(_rows_read(child, table) for child in plan.get("Plans", []))


def test_a_readers_flat_page_reads_the_readable_rows_only(populated, django_user_model, settings):
    """20 readable items spread over 3,000 filler rows, and the folder ``plan``: a page of 5
    merges one ordered path range per readable path, so it reads no row the reader may not
    read. A single filtered scan in path order would read the 750 rows before the sixth
    readable one. A page past the filler reads only the range that can hold its rows. Where the
    readable ranges are large, SQLite's merge stops after the page; PostgreSQL estimates the
    join of a node and its current version at one row, so it may read the ranges whole and
    sort them (it does the same for a superuser's page), but never a row outside them."""
    from versioned_items.models import Node

    settings.VERSIONED_ITEMS = {"DEFAULT_ACCESS": ""}
    reader, big = (django_user_model.objects.create_user(name) for name in ("reader", "big"))
    spread = list(
        Node.objects.filter(path__startswith="filler/").order_by("path").values_list("path", flat=True)
    )
    for path in spread[::150]:
        api.grant(path, user=reader)
    api.grant("plan", user=reader)
    api.grant("filler", user=big)
    api.grant("plan", user=big)
    with recorded() as statements:
        first = api.list_latest(limit=5, user=reader)
        later = api.list_latest(limit=5, user=reader, marker="plan/d0")
        large = api.list_latest(limit=5, user=big)
    assert [e.path for e in first.objects] == spread[:750:150]
    assert [e.path for e in later.objects] == [f"plan/d0/f{i}" for i in (0, 10, 15, 20, 25)]
    assert [e.path for e in large.objects] == spread[:5]
    pages = [(sql, params) for sql, params in statements if sql.endswith(("LIMIT 6", "LIMIT %s"))]
    # past the marker only "plan" can hold rows: one range, no union
    assert ["UNION ALL" in sql for sql, _ in pages] == [True, False, True]
    assert_no_scans(pages if connection.vendor == "sqlite" else pages[:2])
    in_plan = Node.objects.filter(path__startswith="plan").count()  # "plan" itself too
    for (sql, params), most in zip(pages[::2], (20 + in_plan, FILLER + 1 + in_plan), strict=True):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = plan if isinstance(plan, list) else json.loads(plan)
                assert _rows_read(plan[0]["Plan"], "versioned_items_node") <= most
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                details = [row[-1] for row in cursor.fetchall()]
                assert "MERGE (UNION ALL)" in details
                assert not any("TEMP B-TREE" in d for d in details), details
