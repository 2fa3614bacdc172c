"""The admin's audit trail: every write from the admin leaves a ``LogEntry`` on the node it
touched, so that the admin's "Recent actions" and the node's "History" page show it.

Entries are written inside the transaction of the write they describe (a write that fails
leaves no entry, an entry never describes a write that was rolled back). They use
``LogEntry.objects.log_actions()``, the API of Django 5.1 and later (``log_action()`` is gone
in Django 6.0). A delete marker is logged as a deletion, everything else (new versions,
restores, moves, purges, the versioning policy) as an addition when it created the node and
as a change otherwise. The message is plain text in the writer's language: it names the
paths and the serials of the versions written or removed.
"""

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.utils.translation import gettext as _

from ..models import Node

__all__ = ["ADDITION", "CHANGE", "DELETION", "log", "serials"]

#: Serials named in one message at most ("#1, #2, ... and 40 more").
MAX_SERIALS = 20


def log(request, flag: int, node: Node, message: str, comment: str = "") -> LogEntry:
    """Record that ``request.user`` made a write of kind ``flag`` on ``node``; ``comment``
    (the change comment, if any) is appended to ``message``."""
    if comment:
        message = _("%(message)s Comment: %(comment)s") % {"message": message, "comment": comment}
    return LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[node],
        action_flag=flag,
        change_message=message,
        single_object=True,
    )


def serials(numbers: Iterable[int]) -> str:
    """``#3, #5`` (at most :data:`MAX_SERIALS`, then "and N more")."""
    numbers = sorted(numbers)
    shown = ", ".join(f"#{n}" for n in numbers[:MAX_SERIALS])
    rest = len(numbers) - MAX_SERIALS
    return _("%(shown)s and %(rest)d more") % {"shown": shown, "rest": rest} if rest > 0 else shown
