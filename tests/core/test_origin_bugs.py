"""One test per bug of the origin document's node backend (shared/seeds/README.md).

Each test fails on the old behaviour. Statistics under concurrent writers (bug 9f) are covered
in test_concurrency.py; one query per common prefix (9g) in test_listing.py.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from versioned_items import api
from versioned_items.models import Cluster, Node, Version

from ..helpers import assert_listing, statements

pytestmark = pytest.mark.django_db


def test_1_lookup_returns_the_version_it_found():
    version = api.put("one", b"1")
    assert api.lookup("one") == version


def test_2_remove_version_takes_a_serial_not_a_node_id():
    for i in range(3):
        api.put("other", b"%d" % i)
    victim = api.put("two", b"x")
    while victim.serial == victim.node_id:  # sequences differ by database; make them differ
        victim = api.put("two", b"y")
    node_with_victims_serial_as_id = Node.objects.filter(pk=victim.serial).first()
    api.remove_version(victim.serial)
    assert not Version.objects.filter(serial=victim.serial).exists()
    if node_with_victims_serial_as_id is not None:
        assert Node.objects.filter(pk=victim.serial).exists()
    assert Version.objects.filter(node__path="other").count() == 3


def test_3_latest_attribute_keys_returns_the_keys():
    api.put("three/a", b"1", attributes={"k1": "v"})
    assert api.latest_attribute_keys("three") == ["k1"]


def test_4_get_attributes_works():
    version = api.put("four", b"1", attributes={"k": "v"})
    assert api.get_attributes(version.serial) == {"k": "v"}
    assert api.get_attributes(version.serial, ["missing"]) == {}


def test_5_listing_prints_nothing(capsys):
    api.put("five/a", b"1")
    api.list_latest("five", delimiter="/")
    assert capsys.readouterr() == ("", "")


def test_6_prefix_hello_does_not_list_hellna():
    for path in ("hellna", "hello", "hello/x", "hellp"):
        api.put(path, b"1")
    assert_listing(api.list_latest(prefix="hello"), objects=["hello", "hello/x"])
    assert_listing(api.list_latest(prefix="hello", delimiter="/"), objects=["hello"], prefixes=["hello/"])


def test_7_filter_expressions_are_parsed():
    api.put("seven/with", b"1", attributes={"k": "v"})
    api.put("seven/other", b"1", attributes={"k": "w"})
    api.put("seven/without", b"1")
    assert [e.path for e in api.list_latest("seven", filter="!k").objects] == ["seven/without"]
    assert [e.path for e in api.list_latest("seven", filter="k=v").objects] == ["seven/with"]


def test_8_version_rows_hold_only_their_columns():
    version = api.put("eight", b"abc", user="u")
    row = Version.objects.values().get(serial=version.serial)
    assert set(row) == {f.attname for f in Version._meta.concrete_fields}
    assert (row["size"], row["muser"], row["cluster"], row["source"]) == (3, "u", Cluster.NORMAL, None)


def test_9a_purge_deletes_by_serial_and_returns_serials():
    old = api.put("nine/a", b"1")
    api.put("nine/a", b"2")
    assert api.purge("nine", subtree=True) == [old.serial]
    assert not Version.objects.filter(serial=old.serial).exists()


def test_9b_setting_an_existing_key_updates_it():
    version = api.put("nine/b", b"1", attributes={"k": "old"})
    api.set_attributes(version.serial, {"k": "new"})
    assert api.get_attributes(version.serial) == {"k": "new"}


def test_9c_delimiter_listing_never_exceeds_the_limit():
    for i in range(5):
        api.put(f"nine/c/d{i}/x", b"1")
        api.put(f"nine/c/f{i}", b"1")
    for limit in range(1, 11):
        page = api.list_latest("nine/c", delimiter="/", limit=limit)
        assert len(page.objects) + len(page.prefixes) == limit


def test_9d_numbers_compare_as_numbers():
    api.put("nine/d/ten", b"1", attributes={"n": "10"})
    api.put("nine/d/nine", b"1", attributes={"n": "9"})
    assert [e.path for e in api.list_latest("nine/d", filter="n<9.5").objects] == ["nine/d/nine"]


def test_9e_purge_and_lookup_agree_on_strictly_before():
    first = api.put("nine/e", b"1")
    second = api.put("nine/e", b"2")
    api.put("nine/e", b"3")
    assert api.lookup("nine/e", before=second.mtime) == first
    assert api.purge("nine/e", before=second.mtime) == [first.serial]
    assert Version.objects.filter(serial=second.serial).exists()


def test_9g_statistics_of_every_ancestor_in_one_statement():
    api.put("a/b/c/d/e/f", b"1")
    with CaptureQueriesContext(connection) as captured:
        api.put("a/b/c/d/e/f", b"22")
    assert sum("statistics" in s for s in statements(captured.captured_queries)) == 1
