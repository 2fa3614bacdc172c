"""The storage models: a path tree of nodes, their versions, attributes and statistics.

Writes go through :mod:`versioned_items.api`, never through ``save()`` or ``QuerySet.update()``
on these models: the API keeps statistics, content references and the search indexes in step.
The QuerySets here are for reading: their ``update()`` and ``delete()`` raise
:class:`~versioned_items.exceptions.WriteOutsideOperation` outside an operation of the API
(:class:`GuardedQuerySet`; :func:`direct_writes` lifts that for tests and data migrations).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import paths, validation


class CodePointMixin:
    """Compare values in Unicode code point order on every database.

    SQLite compares text bytewise (code point order for UTF-8). PostgreSQL uses the database
    collation, which for most locales ignores punctuation: ``docs/b`` would sort between
    ``docsa`` and ``docsc``, and a prefix would no longer be one index range. The ``C``
    collation restores code point order, so prefix scans, markers and string comparisons in
    filters behave the same everywhere.
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class CodePointCharField(CodePointMixin, models.CharField):
    pass


class CodePointTextField(CodePointMixin, models.TextField):
    pass


class Cluster(models.IntegerChoices):
    NORMAL = 0, _("normal")
    HISTORY = 1, _("history")
    DELETED = 2, _("deleted")


class Versioning(models.TextChoices):
    INHERIT = "", _("inherit from parent")
    AUTO = "auto", _("keep every version")
    NONE = "none", _("keep only the current version")


_direct_writes: ContextVar[bool] = ContextVar("versioned_items_direct_writes", default=False)


@contextmanager
def direct_writes() -> Iterator[None]:
    """Allow ``update()`` and ``delete()`` on the app's QuerySets outside an operation, in this
    thread: for tests that damage a store on purpose (then ``vi_check --fix`` repairs it) and
    for data migrations that keep the statistics and references right themselves."""
    token = _direct_writes.set(True)
    try:
        yield
    finally:
        _direct_writes.reset(token)


class GuardedQuerySet(models.QuerySet):
    """A QuerySet whose ``update()`` and ``delete()`` work only inside an operation of
    :mod:`versioned_items.api` (they raise :class:`~versioned_items.exceptions.WriteOutsideOperation`
    elsewhere): a write that bypassed the API would leave the statistics, the content references
    and the search outbox behind. Reading is not restricted."""

    def _check_operation(self, method: str) -> None:
        from .exceptions import WriteOutsideOperation
        from .operations import current

        if current() is None and not _direct_writes.get():
            raise WriteOutsideOperation(
                f"{self.model.__name__}.objects...{method}() outside an operation would bypass the "
                "statistics, the content references and the search outbox; write through versioned_items.api"
            )

    def update(self, **kwargs):
        self._check_operation("update")
        return super().update(**kwargs)

    update.alters_data = True

    def delete(self):
        self._check_operation("delete")
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


class NodeQuerySet(GuardedQuerySet):
    def subtree(self, path: str, include_self: bool = True) -> "NodeQuerySet":
        """The node at ``path`` (if ``include_self``) and its descendants, as one path range."""
        return self.filter(paths.subtree_q("path", path, include_self=include_self))

    def ancestors_of(self, path: str) -> "NodeQuerySet":
        """The ancestors of ``path``, served by the path index (``path IN (...)``)."""
        return self.filter(path__in=paths.ancestor_paths(path))

    def live(self) -> "NodeQuerySet":
        """Nodes whose current version is in the NORMAL cluster."""
        return self.filter(current__cluster=Cluster.NORMAL)


class Node(models.Model):
    """A path in the tree. The root has the path ``""`` and no parent."""

    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
        help_text=_("The node one level up; empty for the root."),
    )
    path = CodePointCharField(
        _("path"),
        max_length=paths.MAX_PATH_BYTES,
        unique=True,
        help_text=_("Segments separated by '/', without leading or trailing '/'."),
    )
    depth = models.PositiveIntegerField(_("depth"), help_text=_("Number of path segments; 0 for the root."))
    versioning = models.CharField(
        _("versioning"),
        max_length=8,
        choices=Versioning.choices,
        blank=True,
        default=Versioning.INHERIT,
        help_text=_("Whether old versions are kept in this subtree; inherited when empty."),
    )
    current = models.ForeignKey(
        "Version",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current version"),
        help_text=_("The newest version in any cluster (cached; kept by the API)."),
    )

    objects = NodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("node")
        verbose_name_plural = _("nodes")
        ordering = ["path"]
        indexes = [models.Index(fields=["depth", "path"], name="vi_node_depth_path")]

    def __str__(self) -> str:
        return self.path or "/"

    @property
    def is_item(self) -> bool:
        """Whether this node is a live item: its current version is NORMAL (not a folder, not a
        delete marker). Reads ``current``; select it with the node when asking for many."""
        return self.current is not None and self.current.cluster == Cluster.NORMAL

    @property
    def name(self) -> str:
        """The last path segment (``""`` for the root)."""
        return paths.name(self.path)


class VersionQuerySet(GuardedQuerySet):
    def newest_first(self) -> "VersionQuerySet":
        return self.order_by("-serial")

    def in_subtree(self, path: str, include_self: bool = True) -> "VersionQuerySet":
        return self.filter(node__in=Node.objects.subtree(path, include_self).values("pk"))

    def current(self) -> "VersionQuerySet":
        """Versions that are their node's current version."""
        return self.filter(node__current=models.F("serial"))


class Version(models.Model):
    """One version of a node. Serials grow with every write, across all nodes."""

    serial = models.BigAutoField(_("serial"), primary_key=True)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="versions", verbose_name=_("node"))
    size = models.BigIntegerField(_("size"), default=0, help_text=_("Content length in bytes."))
    source = models.BigIntegerField(
        _("source"),
        null=True,
        blank=True,
        help_text=_("Serial of the version this one was copied or restored from."),
    )
    mtime = models.DateTimeField(_("modified"), help_text=_("When this version was written."))
    muser = models.CharField(
        _("modified by"),
        max_length=validation.MAX_USER_LENGTH,
        blank=True,
        help_text=_("User name or id of the writer."),
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"), choices=Cluster.choices, default=Cluster.NORMAL)
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    checksum = models.CharField(
        _("checksum"),
        max_length=64,
        blank=True,
        db_index=True,
        help_text=_("SHA-256 of the content, hex; empty for a delete marker."),
    )
    comment = models.TextField(
        _("comment"),
        blank=True,
        default="",
        db_default="",  # rows written by code that does not know the column (older releases)
        help_text=_("Why this version was written: an edit summary, a commit message."),
    )

    objects = VersionQuerySet.as_manager()

    class Meta:
        verbose_name = _("version")
        verbose_name_plural = _("versions")
        ordering = ["-serial"]
        permissions = [
            ("restore_version", _("Can restore and undelete versions")),
            ("purge_version", _("Can purge old versions")),
        ]
        indexes = [
            models.Index(fields=["node", "serial"], name="vi_version_node_serial"),
            models.Index(fields=["node", "mtime"], name="vi_version_node_mtime"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}@{self.serial}"

    @property
    def is_delete_marker(self) -> bool:
        return self.cluster == Cluster.DELETED and not self.checksum

    def open(self):
        """The content as a binary file-like object (empty for a delete marker)."""
        from .blobs import open_content

        return open_content(self.checksum)


class Attribute(models.Model):
    """A key/value pair on a version. Keys are unique per (version, domain)."""

    version = models.ForeignKey(
        Version, on_delete=models.CASCADE, related_name="attributes", verbose_name=_("version")
    )
    domain = models.CharField(
        _("domain"), max_length=255, blank=True, default="", help_text=_("Namespace of the key.")
    )
    key = CodePointCharField(_("key"), max_length=255)
    value = CodePointTextField(_("value"), blank=True)
    value_number = models.FloatField(
        _("numeric value"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The value as a number when it is one; used by numeric filters."),
    )

    objects = GuardedQuerySet.as_manager()

    class Meta:
        verbose_name = _("attribute")
        verbose_name_plural = _("attributes")
        ordering = ["domain", "key"]
        constraints = [
            models.UniqueConstraint(fields=["version", "domain", "key"], name="vi_attribute_unique_key")
        ]

    def __str__(self) -> str:
        key = f"{self.domain}.{self.key}" if self.domain else self.key
        return f"{key}={self.value}"


class Statistics(models.Model):
    """Totals of one cluster below a node.

    ``population`` counts the versions of the node's children (first level only); ``size``
    sums the versions of all descendants; ``mtime`` is the last time anything below changed.
    """

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="statistics", verbose_name=_("node")
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"), choices=Cluster.choices)
    population = models.BigIntegerField(_("population"), default=0)
    size = models.BigIntegerField(_("size"), default=0)
    mtime = models.DateTimeField(_("last change"), null=True, blank=True)

    objects = GuardedQuerySet.as_manager()

    class Meta:
        verbose_name = _("statistics")
        verbose_name_plural = _("statistics")
        constraints = [models.UniqueConstraint(fields=["node", "cluster"], name="vi_statistics_unique")]

    def __str__(self) -> str:
        return f"{self.node_id}/{self.get_cluster_display()}"


class Blob(models.Model):
    """One stored content file, shared by every version with the same checksum."""

    checksum = models.CharField(_("checksum"), max_length=64, primary_key=True)
    size = models.BigIntegerField(_("size"))
    refcount = models.BigIntegerField(
        _("reference count"), default=0, help_text=_("Number of versions using this content.")
    )

    class Meta:
        verbose_name = _("content blob")
        verbose_name_plural = _("content blobs")

    def __str__(self) -> str:
        return self.checksum


class Grant(models.Model):
    """A level of access to a node and its subtree, given to one user or one group.

    A grant points at a node, not at a path string, so a moved subtree keeps its grants and
    removing a node removes them. Effective rights and the levels are in
    :mod:`versioned_items.grants`; change grants with its functions (re-exported by the API).
    """

    class Level(models.TextChoices):
        READ = "read", _("read")
        WRITE = "write", _("write")
        MANAGE = "manage", _("manage")

    node = models.ForeignKey(
        Node,
        on_delete=models.CASCADE,
        related_name="grants",
        verbose_name=_("node"),
        help_text=_("The path whose subtree the grant covers (the node and everything below it)."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="versioned_items_grants",
        verbose_name=_("user"),
        help_text=_("The user given access; empty when the grant is to a group."),
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="versioned_items_grants",
        verbose_name=_("group"),
        help_text=_("The group whose members are given access; empty when the grant is to a user."),
    )
    level = models.CharField(
        _("level"),
        max_length=8,
        choices=Level.choices,
        default=Level.READ,
        help_text=_("read: see items, history, content; write: change them; manage: restore, purge, grant."),
    )

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="vi_grant_user_or_group",
            ),
            models.UniqueConstraint(
                fields=["node", "user"], condition=models.Q(user__isnull=False), name="vi_grant_unique_user"
            ),
            models.UniqueConstraint(
                fields=["node", "group"],
                condition=models.Q(group__isnull=False),
                name="vi_grant_unique_group",
            ),
        ]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{self.get_level_display()} on {self.node} for {who}"
