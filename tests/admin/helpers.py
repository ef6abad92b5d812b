"""Driving the admin as a browser does: running a list action, posting a change form with
every field as the form shows it (plus the changes a test makes), reading the messages."""

from __future__ import annotations

from django.contrib.messages import get_messages
from django.urls import reverse


def act(client, action: str, objects, model: str = "task"):
    return client.post(
        reverse(f"admin:tasks_{model}_changelist"),
        {"action": action, "_selected_action": [o.pk for o in objects]},
        follow=True,
    )


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _value(bound) -> list[str] | str | None:
    value = bound.field.prepare_value(bound.value())
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value)


def form_data(response, **changes) -> dict:
    """The POST body of the change form in `response` (its main form and inline formsets),
    with `changes` applied to the main form."""
    data: dict = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = _value(form[name])
        if value is not None:
            data[form.add_prefix(name)] = value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[formset.management_form.add_prefix(name)] = _value(formset.management_form[name])
        for sub in formset.forms:
            for name in sub.fields:
                value = _value(sub[name])
                if value is not None:
                    data[sub.add_prefix(name)] = value
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data
