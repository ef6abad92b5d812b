"""Who may see and do what in the dashboard.

A user sees the Batch accounts granted to them by an AccountMembership, as a viewer (look)
or an operator (act); a superuser sees every account as an operator. Anything outside the
user's accounts is a plain 404, as if it did not exist; an action by a viewer is a 403
(PermissionDenied), whatever the form or the button said.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required as django_login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from tasks import queries
from tasks.errors import BatchError
from tasks.models import Account, AccountMembership, Job, Task

OPERATOR = AccountMembership.Role.OPERATOR
VIEWER = AccountMembership.Role.VIEWER
VIEWER_REASON = "Your role on this account is viewer: only operators can act."


@dataclass(frozen=True)
class Access:
    """One user's standing in one account."""

    account: Account
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == OPERATOR

    def refusal(self, error: BatchError | None) -> str:
        """Why a button is disabled ("" when it is enabled): the role first, then the rule."""
        if not self.can_act:
            return VIEWER_REASON
        return error.message if error else ""


def login_required(view):
    """Django's login_required, except that an htmx request whose session has expired
    (a poll, a button) sends the whole page to the sign-in form instead of swapping the
    form into a fragment."""
    plain = django_login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated and getattr(request, "htmx", False):
            from django_htmx.http import HttpResponseClientRedirect

            current = request.htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(redirect_to_login(current)["Location"])
        return plain(request, *args, **kwargs)

    return wrapper


def visible_accounts(user) -> QuerySet[Account]:
    """The accounts a user may look at (one query when evaluated)."""
    if user.is_superuser:
        return Account.objects.all()
    return Account.objects.filter(memberships__user=user)


def roles_of(user) -> dict[int, str]:
    """account pk -> role for every account the user sees (one query)."""
    if user.is_superuser:
        return {pk: OPERATOR for pk in Account.objects.values_list("pk", flat=True)}
    return dict(AccountMembership.objects.filter(user=user).values_list("account_id", "role"))


def account_access(user, name: str, *, act: bool = False) -> Access:
    """The user's access to the account called `name`: 404 if they may not see it, 403 if
    `act` and they may not act on it. One query."""
    if user.is_superuser:
        account = Account.objects.filter(name=name).first()
        role = OPERATOR
    else:
        membership = (AccountMembership.objects.select_related("account")
                      .filter(user=user, account__name=name).first())
        account, role = (membership.account, membership.role) if membership else (None, "")
    if account is None:
        raise Http404("No such account.")
    access = Access(account, role)
    if act:
        require_operator(access)
    return access


def require_operator(access: Access) -> None:
    if not access.can_act:
        raise PermissionDenied(VIEWER_REASON)


def job_access(user, account: str, job_id: str, *, act: bool = False) -> tuple[Access, Job]:
    """The access and the job, or 404 / 403. Two queries."""
    access = account_access(user, account, act=act)
    try:
        job = queries.get_job(access.account, job_id)
    except BatchError:
        raise Http404("No such job.") from None
    job.account = access.account
    return access, job


def task_access(user, account: str, job_id: str, task_id: str, *, act: bool = False) -> tuple[Access, Task]:
    """The access and the task (with its job), or 404 / 403. Three queries."""
    access, job = job_access(user, account, job_id, act=act)
    try:
        task = queries.get_task(job, task_id)
    except BatchError:
        raise Http404("No such task.") from None
    return access, task


def operator_accounts(user) -> QuerySet[Account]:
    """The accounts whose audit records and bulk operations the user may read."""
    if user.is_superuser:
        return Account.objects.all()
    return Account.objects.filter(memberships__user=user, memberships__role=OPERATOR)
