"""Document sources: loaded in batches with a constant number of queries, texts extracted once."""

import pytest

from versioned_items import api
from versioned_items.models import Node, Version
from versioned_items.search import documents, extractors
from versioned_items.search.documents import SOURCE_ATTR

pytestmark = pytest.mark.django_db


@pytest.fixture
def extracted(monkeypatch):
    """The sources whose text was extracted (rather than reused)."""
    calls = []
    real = documents.extract_text
    monkeypatch.setattr(documents, "extract_text", lambda source: calls.append(source) or real(source))
    return calls


def test_latest_sources_cost_two_queries(django_assert_num_queries):
    ids = [api.put(f"d/{i}", b"x", attributes={"a": str(i)}).node_id for i in range(20)]
    api.delete("d/0")
    with django_assert_num_queries(2):
        nodes = documents.load_latest(ids + [999999])
    assert sorted(nodes) == sorted(ids[1:])  # deleted and unknown nodes have no document
    source = getattr(nodes[ids[5]], SOURCE_ATTR)
    assert source.path == "d/5" and source.attributes == [("", "a", "5")] and source.valid_until is None


def test_history_sources_cost_two_queries_plus_one_for_markers(django_assert_num_queries):
    v1 = api.put("d/a", b"one")
    v2 = api.put("d/a", b"two")
    with django_assert_num_queries(2):
        versions = documents.load_history([v1.serial, v2.serial])
    assert getattr(versions[v1.serial], SOURCE_ATTR).valid_until == v2.mtime
    assert getattr(versions[v2.serial], SOURCE_ATTR).valid_until is None
    marker = api.delete("d/a")
    with django_assert_num_queries(3):
        versions = documents.load_history([v1.serial, marker.serial])
    source = getattr(versions[marker.serial], SOURCE_ATTR)
    assert (source.text_checksum, source.text_content_type) == (v2.checksum, v2.content_type)


def test_equal_contents_are_extracted_once(extracted):
    serials = [api.put(f"d/{i}.txt", b"same words").serial for i in range(5)]
    sources = [getattr(v, SOURCE_ATTR) for v in documents.load_history(serials).values()]
    documents.fill_texts(sources)
    assert len(extracted) == 1
    assert {s.text for s in sources} == {"same words"}


def test_texts_held_by_the_index_are_reused(extracted):
    v1 = api.put("d/a.txt", b"words")
    source = getattr(documents.load_history([v1.serial])[v1.serial], SOURCE_ATTR)
    documents.fill_texts([source], lookup=lambda serials, keys: ({v1.serial: ("kept", "ok")}, {}))
    assert extracted == [] and source.text == "kept"
    source.text_status = None
    documents.fill_texts([source], lookup=lambda serials, keys: ({v1.serial: ("", extractors.FAILED)}, {}))
    assert len(extracted) == 1 and source.text == "words"  # a failed extraction is tried again


def test_sources_load_on_demand_for_bare_instances():
    v1 = api.put("d/a.txt", b"on demand")
    source = documents.source_for(Version.objects.get(pk=v1.serial))
    assert (source.text, source.text_status) == ("on demand", extractors.OK)
    assert documents.source_for(Node.objects.get(pk=v1.node_id)).text == "on demand"


def test_empty_version_has_no_text():
    api.put("d/a", b"x")
    marker = api.delete("d/a")
    api.purge("d/a", clusters=[1])  # the deleted content is gone
    source = documents.source_for(Version.objects.get(pk=marker.serial))
    assert (source.text, source.text_status) == ("", extractors.EMPTY)
