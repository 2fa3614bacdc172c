"""The version admin: the list of every version, a version's page with its content and
attributes (edited through the API), restore, diff and download.

Only the versions of paths the user may read are listed or shown (:mod:`.base`). Who may
change a version's attributes is decided in one place, :func:`can_change_attributes`, and who
may restore it in :meth:`~.base.ReadOnlyTreeAdmin.has_restore_permission` (``manage`` at its path)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from .. import api, grants, pages, permissions
from ..diffs import read_text
from ..exceptions import ContentMissing
from ..forms import CompareForm, first_error, format_time
from ..models import Attribute, Version
from ..templatetags.vi_paths import breakable
from . import audit
from .base import ReadOnlyTreeAdmin, counted, node_url, object_pk, short_time, site_url, version_url
from .filters import ClusterFilter, ContentTypeFilter, SubtreeFilter, UserFilter

#: Bytes of a version's content shown on its page.
PREVIEW_BYTES = 64 * 1024

#: Characters of a change comment shown in the version list (the version's page shows it all).
LIST_COMMENT_CHARS = 60


def can_change_attributes(request, version: Version | None) -> bool:
    """Whether the user, who has the model permissions of the page or the inline, may change
    the attributes of ``version``: the ``write`` level at its path (None: a page without one)."""
    return version is None or grants.can(request.user, version.node.path, grants.Level.WRITE)


class AttributeInline(admin.TabularInline):
    """A version's attributes, edited inline; saved through the API (see VersionAdmin)."""

    model = Attribute
    fields = ("domain", "key", "value")
    extra = 1
    WIDGETS = {
        "domain": admin.widgets.AdminTextInputWidget(attrs={"size": 10}),
        "key": admin.widgets.AdminTextInputWidget(attrs={"size": 20}),
        "value": admin.widgets.AdminTextareaWidget(attrs={"rows": 1, "cols": 48}),
    }

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and can_change_attributes(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and can_change_attributes(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and can_change_attributes(request, obj)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in self.WIDGETS:
            kwargs["widget"] = self.WIDGETS[db_field.name]
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Version)
class VersionAdmin(ReadOnlyTreeAdmin):
    version_prefix = ""
    path_field = "node__path"
    list_display = (
        "serial",
        "node_link",
        "cluster",
        "size",
        "modified",
        "muser",
        "content_type",
        "short_comment",
    )
    list_display_links = ("serial",)
    list_select_related = ("node",)
    list_filter = (
        ClusterFilter,
        ContentTypeFilter,
        UserFilter,
        ("mtime", admin.DateFieldListFilter),
        SubtreeFilter,
    )
    sortable_by = ("serial",)
    actions = ["restore_selected"]
    inlines = [AttributeInline]
    fields = (
        "node_link",
        "serial",
        "cluster",
        "size",
        "mtime",
        "muser",
        "content_type",
        "checksum",
        "comment",
        "source_link",
        "content",
    )
    readonly_fields = fields

    @admin.display(description=_("node"))
    def node_link(self, version):
        return format_html('<a href="{}">{}</a>', node_url(version.node_id), breakable(version.node.path))

    @admin.display(description=_("modified"), ordering="mtime")
    def modified(self, version):
        return short_time(version.mtime)

    @admin.display(description=_("comment"))
    def short_comment(self, version):
        """The comment's first line, cut at :data:`LIST_COMMENT_CHARS` with an ellipsis (also
        when more lines follow); the whole comment in the title, shown on hover."""
        if not version.comment:
            return ""
        first, *rest = version.comment.splitlines()
        short = Truncator(first).chars(LIST_COMMENT_CHARS)
        if rest and short == first:
            short = f"{first}…"
        return format_html('<span class="vi-comment" title="{}">{}</span>', version.comment, short)

    @admin.display(description=_("restored or copied from"))
    def source_link(self, version):
        if not version.source:
            return "—"
        return format_html('<a href="{}">#{}</a>', version_url(version.source), version.source)

    @admin.display(description=_("content"))
    def content(self, version):
        if version.is_delete_marker:
            return _("A delete marker: the item was deleted here.")
        try:
            text = read_text(version, PREVIEW_BYTES)
        except ContentMissing:
            return format_html('<p class="vi-content-missing">{}</p>', pages.content_missing_message())
        download = reverse("admin:versioned_items_version_content", args=[version.serial])
        if text is None:
            return format_html('{} <a href="{}">{}</a>', _("Binary content."), download, _("Download"))
        more = format_html(' <a href="{}">{}</a>', download, _("Download all")) if text.truncated else ""
        return format_html('<pre class="vi-content">{}</pre>{}', text.text, more)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("diff/", view(self.diff_view), name="versioned_items_version_diff"),
            path("<vi_id:serial>/restore/", view(self.restore_view), name="versioned_items_version_restore"),
            path("<vi_id:serial>/content/", view(self.content_view), name="versioned_items_version_content"),
        ] + super().get_urls()

    def get_object(self, request, object_id, from_field=None):
        pk = object_pk(object_id)
        return self.get_queryset(request).select_related("node").filter(pk=pk).first() if pk else None

    # Django's view_version and change_version are site-wide grants (read and write on every
    # path, grants.MODEL_PERMISSIONS), so they cannot also be what lets a user who reads or
    # writes only some folders reach these pages: the node admin's view_node and change_node
    # do that too, and the rows and pages are then those the grants allow.

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or permissions.allowed(
            request.user, "versioned_items.view_node"
        )

    def has_change_permission(self, request, obj=None):
        reach = super().has_change_permission(request, obj) or permissions.allowed(
            request.user, "versioned_items.change_node"
        )
        return reach and can_change_attributes(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        if version is None:
            return self.error_response(
                request,
                _("There is no version %(id)r.") % {"id": object_id},
                status=404,
                back=reverse("admin:versioned_items_version_changelist"),
            )
        older = Version.objects.filter(node_id=version.node_id, serial__lt=version.serial)
        previous = older.order_by("-serial").first()
        extra = {
            "title": _("Version #%(serial)s") % {"serial": version.serial},
            "subtitle": version.node.path,
            "version": version,
            "previous": previous,
            "is_current": version.node.current_id == version.serial,
            "can_restore": self.has_restore_permission(request, version.node.path),
            "site_item_url": site_url("item", version.node.path),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    # Saving: the version itself never changes; its attributes change through the API.

    def save_model(self, request, obj, form, change):
        pass

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)  # fills new/changed/deleted_objects for the change message
        serial = form.instance.serial
        removed, changed = [], {}
        for inline in formset.forms:
            initial = (
                (inline.initial.get("domain", ""), inline.initial.get("key")) if inline.instance.pk else None
            )
            if inline in formset.deleted_forms:
                removed.append(initial)
                continue
            if not inline.has_changed() or not inline.cleaned_data:
                continue
            data = inline.cleaned_data
            current = (data["domain"], data["key"])
            if initial and initial != current:
                removed.append(initial)
            changed.setdefault(data["domain"], {})[data["key"]] = data["value"]
        with api.batch():
            for domain, key in filter(None, removed):
                api.delete_attributes(serial, [key], domain=domain)
            for domain, items in changed.items():
                api.set_attributes(serial, items, domain=domain)

    def response_change(self, request, obj):
        if "_continue" in request.POST:
            return super().response_change(request, obj)
        self.message_user(
            request,
            _("The attributes of version #%(serial)s were saved.") % {"serial": obj.serial},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(node_url(obj.node_id))

    # Restore: a copy of an earlier version becomes current.

    @admin.action(description=_("Restore selected versions"), permissions=["restore"])
    def restore_selected(self, request, queryset):
        chosen = self.selection(request, queryset.select_related("node").order_by("node__path", "-serial"))
        if chosen is None:
            return None
        if any(not self.has_restore_permission(request, v.node.path) for v in chosen):
            raise PermissionDenied
        markers = [v for v in chosen if v.is_delete_marker]
        versions = [v for v in chosen if not v.is_delete_marker]
        if len({v.node_id for v in versions}) < len(versions):
            self.message_user(request, _("Pick at most one version per item to restore."), messages.ERROR)
            return None
        if not versions:
            self.message_user(
                request, _("Delete markers cannot be restored; pick an earlier version."), messages.WARNING
            )
            return None
        if self.confirmed(request):
            self.run(
                request,
                lambda: [self.restore(request, v) for v in versions],
                counted("Restored %(n)d version.", "Restored %(n)d versions."),
            )
            return None
        items = [
            (
                f"{v.node.path} #{v.serial}",
                _("of %(time)s by %(user)s, %(size)s bytes")
                % {"time": format_time(v.mtime), "user": v.muser or "—", "size": v.size},
            )
            for v in versions
        ]
        skipped = [f"#{v.serial}" for v in markers]
        return self.confirm(
            request,
            versions,
            title=_("Restore versions"),
            items=items,
            button=_("Yes, restore"),
            skipped=skipped,
            question=_(
                "A copy of each of these versions becomes the current "
                "version of its item; the history keeps everything:"
            ),
        )

    def restore(self, request, version: Version) -> Version:
        restored = api.restore(version.serial, user=request.user)
        message = _("Restored %(path)s #%(source)s as version #%(serial)s.") % {
            "path": version.node.path,
            "source": version.serial,
            "serial": restored.serial,
        }
        audit.log(request, audit.CHANGE, version.node, message)
        return restored

    def restore_view(self, request, serial):
        queryset = self.get_queryset(request).filter(pk=serial)
        version = queryset.select_related("node").first()
        if version is None:
            return self.error_response(request, _("There is no version %(id)r.") % {"id": serial}, status=404)
        if not self.has_restore_permission(request, version.node.path):
            raise PermissionDenied
        return self.restore_selected(request, queryset) or HttpResponseRedirect(node_url(version.node_id))

    # Reading: a diff of two versions, and a version's content.

    def diff_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = CompareForm(request.GET)
        if not form.is_valid():
            return self.error_response(request, first_error(form))
        serials = (form.cleaned_data["old"], form.cleaned_data["new"])
        readable = set(self.get_queryset(request).filter(pk__in=serials).values_list("pk", flat=True))
        for serial in serials:
            if serial not in readable:  # missing, or of a path the user may not read: the same 404
                return self.error_response(
                    request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404
                )
        try:
            diff = pages.compare(form.cleaned_data["old"], form.cleaned_data["new"])
        except pages.PageError as error:
            return self.error_response(request, error.message, status=error.status)
        context = self.page_context(request, _("Differences"), diff=diff)
        return TemplateResponse(request, "admin/versioned_items/version/diff.html", context)

    def content_view(self, request, serial):
        version = self.get_queryset(request).select_related("node").filter(pk=serial).first()
        if version is None:
            raise Http404(_("There is no version %(id)r.") % {"id": serial})
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        try:
            return pages.content_response(version)
        except pages.PageError as error:
            return self.error_response(request, error.message, status=error.status)
