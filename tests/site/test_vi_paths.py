"""The ``breakable`` path filter (``{% load vi_paths %}``): escaped, a <wbr> after each slash."""

from django.template import Context, Template

from versioned_items.templatetags.vi_paths import breakable


def test_slashes_become_break_opportunities_and_the_rest_is_escaped():
    assert breakable("docs/locale/fr/LC_MESSAGES/django.po") == (
        "docs/<wbr>locale/<wbr>fr/<wbr>LC_MESSAGES/<wbr>django.po"
    )
    assert breakable("a<b>/&c") == "a&lt;b&gt;/<wbr>&amp;c"
    assert breakable("") == "" and breakable("name") == "name"


def test_in_a_template():
    rendered = Template("{% load vi_paths %}<h1>{{ path|breakable }}</h1>").render(
        Context({"path": "a/<i>/"})
    )
    assert rendered == "<h1>a/<wbr>&lt;i&gt;/<wbr></h1>"
