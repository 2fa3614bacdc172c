"""Admin lists that never count a whole table.

:class:`CountLimitPaginator` counts at most :data:`COUNT_LIMIT` rows ("more than 1000"), and
:class:`FastChangeList` fetches one row more than a page to know whether there is a next one.
"""

from functools import cached_property

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.http import Http404
from django.utils.translation import gettext_lazy as _

#: Rows counted at most for a list's total ("1,000+ nodes").
COUNT_LIMIT = 1000


class AtLeast(int):
    """A count that stopped at a limit: prints as ``1000+``."""

    def __str__(self) -> str:
        return f"{int(self)}+"


class PeekedPage(Page):
    """A page that knows whether another follows (it fetched one row more) but not how many."""

    def __init__(self, object_list, number, paginator, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more


class CountLimitPaginator(Paginator):
    """Pages a queryset without counting all of it.

    ``count`` is one bounded ``COUNT`` over a ``LIMIT`` subquery (an :class:`AtLeast` when it
    hit :data:`COUNT_LIMIT`), and a page fetches one row more than it shows to know whether
    another follows, so page numbers past the counted rows still work.
    """

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: COUNT_LIMIT + 1].count()
        return AtLeast(COUNT_LIMIT) if counted > COUNT_LIMIT else counted

    def validate_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(_("That page number is not an integer")) from None
        if number < 1:
            raise EmptyPage(_("That page number is less than 1"))
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(_("That page contains no results"))
        page = PeekedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)
        self.current_page = page
        return page


class FastChangeList(ChangeList):
    """A changelist paged by previous/next links (see :class:`CountLimitPaginator`)."""

    def get_results(self, request):
        # A page past the last one is a 404, as on the site's search; Django would redirect to
        # the unfiltered list (?e=1), or show page 1 under any number.
        try:
            super().get_results(request)
        except IncorrectLookupParameters:  # raised by Django only for an invalid page
            raise Http404(_("There is no page %(page)s of this list.") % {"page": self.page_num}) from None
        if self.page_num > 1 and not self.multi_page:
            raise Http404(_("There is no page %(page)s of this list.") % {"page": self.page_num})
        page = getattr(self.paginator, "current_page", None)
        self.capped = isinstance(self.result_count, AtLeast)
        self.counted = int(self.result_count)
        self.previous_url = (
            self.get_query_string({PAGE_VAR: self.page_num - 1}) if self.page_num > 1 else None
        )
        self.next_url = (
            self.get_query_string({PAGE_VAR: self.page_num + 1}) if page and page.has_next() else None
        )
        self.first_index = (self.page_num - 1) * self.list_per_page + 1
        self.last_index = self.first_index + len(self.result_list) - 1
