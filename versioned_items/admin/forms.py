"""The admin's own forms: paging on a node's page, what a purge removes, and the versioning
policy. The write forms it shares with the site (uploads, folders, text edits, moves, copies,
deletes) are in :mod:`versioned_items.forms`."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ..forms import IdField, TimeField, clean_marker
from ..models import Cluster, Versioning


class NodePageForm(forms.Form):
    """Paging on a node's admin page: children after a path, versions older than a serial."""

    after = forms.CharField(required=False, strip=False)
    older = IdField(required=False)

    def clean_after(self):
        return clean_marker(self.cleaned_data["after"])


class PurgeForm(forms.Form):
    """What to purge below a node: versions of some clusters written before a time."""

    CLUSTERS = [
        (Cluster.HISTORY.value, _("old versions (history)")),
        (Cluster.DELETED.value, _("delete markers and deleted versions")),
    ]

    before = TimeField(required=True, label=_("Written before"))
    clusters = forms.TypedMultipleChoiceField(
        choices=CLUSTERS,
        coerce=int,
        initial=[Cluster.HISTORY.value],
        label=_("What"),
        widget=forms.CheckboxSelectMultiple,
    )

    def purge_arguments(self) -> dict:
        """Keyword arguments for :func:`~versioned_items.api.purge` and ``purge_summary``."""
        return {
            "before": self.cleaned_data["before"],
            "clusters": self.cleaned_data["clusters"],
            "subtree": True,
        }


class VersioningForm(forms.Form):
    versioning = forms.ChoiceField(
        choices=Versioning.choices,
        required=False,
        label=_("Versioning"),
        widget=forms.RadioSelect,
        help_text=_(
            "Puts from now on follow it. With 'keep only the current version', each new version "
            "replaces the previous one for good."
        ),
    )
