"""The grants of a node in the admin: its page lists the grants that apply there (its own, and
those inherited from the folders above it, each naming its folder), and a user who may manage
the path (:func:`versioned_items.grants.can` with ``"manage"``) gets a form that gives a user
or a group a level, and a button that removes each of the node's own grants.

Changes are POSTs with Django's CSRF check to the node's ``grants/`` page. They go through
:func:`versioned_items.api.grant` and :func:`~versioned_items.api.revoke` inside one
:func:`~versioned_items.api.batch` with their :mod:`audit` entry, logged as a change of the node
(Django would show an addition or a deletion as one of the node itself). Input that cannot be
used (an unknown user or group, both or neither, a bad level, a grant that is not on this node)
is shown on that page with HTTP 400, and nothing is written.
"""

from django import forms
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import api, grants, validation
from ..exceptions import InvalidInput
from ..models import Grant, Node
from . import audit
from .base import node_url, per_request


class GrantForm(forms.Form):
    """Give a user or a group (by name) a level on the node; replaces their grant there, if any."""

    user = forms.CharField(
        label=gettext_lazy("User"),
        required=False,
        max_length=validation.MAX_USER_LENGTH,
        help_text=gettext_lazy("A user name; or leave it empty and name a group."),
    )
    group = forms.CharField(label=gettext_lazy("Group"), required=False, max_length=150)
    level = forms.ChoiceField(
        label=gettext_lazy("Level"),
        choices=Grant.Level.choices,
        initial=Grant.Level.READ,
        help_text=gettext_lazy(
            "read: see the items below, their history and content; write: also change them; "
            "manage: also restore, purge and grant."
        ),
    )

    def clean_level(self):
        try:
            return validation.clean_level(self.cleaned_data["level"])
        except InvalidInput as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("group")):
            raise forms.ValidationError(_("Name a user or a group (one of them, not both)."))
        return data

    def principal(self) -> dict:
        """``{"user": name}`` or ``{"group": name}``, for :func:`versioned_items.api.grant`."""
        data = self.cleaned_data
        return {"user": data["user"]} if data["user"] else {"group": data["group"]}


class RevokeForm(forms.Form):
    """Remove one of the node's own grants, given by its id."""

    grant = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)


def principal_label(grant: Grant) -> str:
    """``user ann`` or ``group team``: who a grant is to, as the pages and audit messages say it."""
    if grant.user_id is not None:
        return _("user %(name)s") % {"name": grant.user.get_username()}
    return _("group %(name)s") % {"name": grant.group.name}


class NodeGrants:
    """The grants page of :class:`~versioned_items.admin.NodeAdmin`, and its part of the node's page."""

    grants_template = "admin/versioned_items/node/grants.html"

    def grant_urls(self):
        view = self.admin_site.admin_view
        return [path("<vi_id:node_id>/grants/", view(self.grants_view), name="versioned_items_node_grants")]

    def can_manage(self, request, node: Node) -> bool:
        """Whether the user may change the grants at ``node`` (the ``manage`` level there)."""
        return per_request(
            request, ("manage", node.path), lambda: grants.can(request.user, node.path, grants.Level.MANAGE)
        )

    def grants_context(self, request, node: Node, form=None) -> dict:
        """What the node's page and the grants page show: the grants that apply at the node
        (one query), and the forms when the user may manage it."""
        manage = self.can_manage(request, node)
        return {
            "grants": grants.grants(node.path),
            "can_manage_grants": manage,
            "grant_form": (form or GrantForm()) if manage else None,
        }

    def grants_view(self, request, node_id):
        node = self.get_queryset(request).filter(pk=node_id).first()
        if node is None:  # missing, or a path the user may not read
            return self.error_response(
                request, _("There is no node with the id %(id)r.") % {"id": node_id}, status=404
            )
        grant_form = revoke_form = None
        if request.method == "POST":
            if not self.can_manage(request, node):
                raise PermissionDenied
            if "_revoke" in request.POST:
                revoke_form = RevokeForm(request.POST)
                message = self.submit(request, revoke_form, self.revoke, node)
            else:
                grant_form = GrantForm(request.POST)
                message = self.submit(request, grant_form, self.change, node)
            if message:
                return self.done(request, message, node_url(node.pk) + "#grants")
        context = self.page_context(
            request,
            _("Grants on %(path)s") % {"path": node.path or "/"},
            node=node,
            revoke_form=revoke_form,
            **self.grants_context(request, node, grant_form),
        )
        status = 200 if request.method != "POST" else 400  # a POST that gets here was refused
        return TemplateResponse(request, self.grants_template, context, status=status)

    def submit(self, request, form, operation, node: Node) -> str | None:
        """``operation(request, node, form)`` on a valid ``form``, in one transaction with its
        audit entry (:meth:`~versioned_items.admin.writes.NodeWrites.write`): its message, or
        None with the reason on the form."""
        if not form.is_valid():
            return None
        return self.write(request, form, lambda: operation(request, node, form))

    def change(self, request, node: Node, form: GrantForm) -> str | None:
        """Give the form's user or group its level on ``node`` (in the caller's batch), logged;
        the message, or None with a note on the form when they already have that level."""
        principal, level = form.principal(), form.cleaned_data["level"]
        before = self.own_grant(node, principal)
        if before is not None and before.level == level:
            form.add_error(
                None,
                _("%(who)s already has %(level)s on %(path)s; nothing was changed.")
                % {"who": principal_label(before), "level": level, "path": node.path or "/"},
            )
            return None
        granted = api.grant(node.path, level=level, **principal)
        values = {"who": principal_label(granted), "level": level, "path": node.path or "/"}
        if before is None:
            message = _("Granted %(level)s on %(path)s to %(who)s.") % values
        else:
            message = _("Changed the grant of %(who)s on %(path)s from %(before)s to %(level)s.") % {
                **values,
                "before": before.level,
            }
        audit.log(request, audit.CHANGE, node, message)
        return message

    def own_grant(self, node: Node, principal: dict) -> Grant | None:
        """The grant of the named user or group on ``node`` itself, if any."""
        rows = Grant.objects.filter(node=node).select_related("user", "group")
        if "user" in principal:
            model = Grant._meta.get_field("user").related_model
            return rows.filter(**{f"user__{model.USERNAME_FIELD}": principal["user"]}).first()
        return rows.filter(group__name=principal["group"]).first()

    def revoke(self, request, node: Node, form: RevokeForm) -> str | None:
        """Remove the form's grant (one of ``node``'s own), logged; the message, or None with
        an error on the form when ``node`` has no such grant."""
        found = Grant.objects.filter(node=node, pk=form.cleaned_data["grant"]).select_related("user", "group")
        found = found.first()
        if found is None:
            form.add_error(
                None,
                _(
                    "There is no grant with the id %(id)s on %(path)s; an inherited grant is "
                    "removed on its folder's page."
                )
                % {"id": form.cleaned_data["grant"], "path": node.path or "/"},
            )
            return None
        api.revoke(node.path, **({"user": found.user} if found.user_id else {"group": found.group}))
        message = _("Revoked the %(level)s grant of %(who)s on %(path)s.") % {
            "level": found.level,
            "who": principal_label(found),
            "path": node.path or "/",
        }
        audit.log(request, audit.CHANGE, node, message)
        return message
