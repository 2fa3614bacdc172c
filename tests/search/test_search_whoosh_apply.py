"""The Whoosh engine's apply path: a batch looks up only the ids and texts the index has, so an
import of new versions runs no deletion query and no text query for them."""

import pytest
from whoosh.searching import Searcher

from versioned_items import api
from versioned_items.search import indexing

from ..search_fixtures import assert_in_step, history_docs

pytestmark = [pytest.mark.django_db, pytest.mark.whoosh_only]


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


@pytest.fixture
def queries(monkeypatch) -> list[int]:
    """The number of terms of each query the Whoosh searchers run (deletes and text lookups)."""
    seen: list[int] = []
    run = Searcher.docs_for_query

    def counted(self, q, for_deletion=False):
        seen.append(len(list(q.leaves())))
        return run(self, q, for_deletion=for_deletion)

    monkeypatch.setattr(Searcher, "docs_for_query", counted)
    return seen


def test_new_documents_cost_no_index_query(queries):
    for i in range(20):
        api.put(f"new/{i}.txt", f"fresh words {i}".encode())
    assert indexing.wait_for_index() == 40
    assert queries == []
    assert_in_step()


def test_replaced_documents_are_looked_up_one_by_one(queries):
    first = [api.put(f"docs/{i}.txt", f"first {i}".encode()) for i in range(3)]
    indexing.wait_for_index()
    for i in range(3):
        api.put(f"docs/{i}.txt", f"second {i}".encode())
    indexing.wait_for_index()
    # One text lookup of the 3 old versions (their valid_until changed) and their 3 contents,
    # the checksums of the new contents left out; deletes of the 3 old versions and 3 nodes.
    assert sorted(queries) == [1] * 6 + [6]
    assert history_docs()[first[0].serial]["content"] == "first 0"
    assert_in_step()


def test_a_known_text_is_reused_not_extracted(queries):
    api.put("docs/a.txt", b"the same words")
    indexing.wait_for_index()
    api.put("docs/b.txt", b"the same words")
    indexing.wait_for_index()
    # One lookup with the one checksum the history index has; the new serial is not asked for.
    assert queries == [1]
    assert_in_step()
