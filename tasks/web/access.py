"""Who may see and do what in the dashboard.

A user sees the Batch accounts granted to them, as a viewer (look) or an operator (act): by
an AccountMembership of their own, or by an AccountGroupGrant to a Django group they are in
(the strongest role wins); a superuser sees every account as an operator. Anything outside the
user's accounts is a plain 404, as if it did not exist; an action by a viewer is a 403
(PermissionDenied), whatever the form or the button said.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required as django_login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Min, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from tasks.errors import BatchError
from tasks.models import Account, AccountGroupGrant, AccountMembership, ComputeNode, Job, Pool, Task
from tasks.queries.jobs import get_job
from tasks.queries.nodes import get_node
from tasks.queries.pools import get_pool
from tasks.queries.tasks import get_task

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


def _granted(user) -> Q:
    """Accounts granted to the user, directly or through one of their groups."""
    return Q(memberships__user=user) | Q(group_grants__group__user=user)


def _with_role(accounts: QuerySet[Account], user) -> QuerySet[Account]:
    """Annotate each account with the user's own role and their groups' strongest role
    ("operator" sorts before "viewer", so Min is the strongest)."""
    own = AccountMembership.objects.filter(account=OuterRef("pk"), user=user).values("role")[:1]
    grouped = (
        AccountGroupGrant.objects.filter(account=OuterRef("pk"), group__user=user)
        .values("account")
        .annotate(best=Min("role"))
        .values("best")[:1]
    )
    return accounts.annotate(own_role=Subquery(own), group_role=Subquery(grouped))


def _role(account: Account) -> str:
    roles = [r for r in (account.own_role, account.group_role) if r]
    return min(roles) if roles else ""


def visible_accounts(user) -> QuerySet[Account]:
    """The accounts a user may look at (one query when evaluated)."""
    if user.is_superuser:
        return Account.objects.all()
    return Account.objects.filter(pk__in=Account.objects.filter(_granted(user)).values("pk"))


def roles_of(user) -> dict[int, str]:
    """account pk -> role for every account the user sees (one query)."""
    if user.is_superuser:
        return {pk: OPERATOR for pk in Account.objects.values_list("pk", flat=True)}
    return {a.pk: _role(a) for a in _with_role(visible_accounts(user), user)}


def account_access(user, name: str, *, act: bool = False) -> Access:
    """The user's access to the account called `name`: 404 if they may not see it, 403 if
    `act` and they may not act on it. One query."""
    if user.is_superuser:
        account = Account.objects.filter(name=name).first()
        role = OPERATOR
    else:
        account = _with_role(Account.objects.filter(name=name), user).first()
        role = _role(account) if account else ""
        if not role:
            account = None
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
        job = get_job(access.account, job_id)
    except BatchError:
        raise Http404("No such job.") from None
    job.account = access.account
    return access, job


class TaskMissing(Http404):
    """No such task in a job the user may see: a 404 that knows the job, so that the page
    can link back to it (and a live task page can say the task was deleted)."""

    def __init__(self, access: Access, job: Job, task_id: str) -> None:
        super().__init__("No such task.")
        self.access, self.job, self.task_id = access, job, task_id


def task_access(
    user, account: str, job_id: str, task_id: str, *, act: bool = False
) -> tuple[Access, Task]:
    """The access and the task (with its job), or 404 (TaskMissing once the job is found) /
    403. Three queries."""
    access, job = job_access(user, account, job_id, act=act)
    try:
        task = get_task(job, task_id)
    except BatchError:
        raise TaskMissing(access, job, task_id) from None
    return access, task


def pool_access(user, account: str, pool_id: str, *, act: bool = False) -> tuple[Access, Pool]:
    """The access and the pool (its account loaded), or 404 / 403. Two queries."""
    access = account_access(user, account, act=act)
    try:
        pool = get_pool(access.account, pool_id)
    except BatchError:
        raise Http404("No such pool.") from None
    pool.account = access.account
    return access, pool


def node_access(
    user, account: str, pool_id: str, node_id: str, *, act: bool = False
) -> tuple[Access, ComputeNode]:
    """The access and the node (its pool and account loaded), or 404 / 403. Three queries."""
    access, pool = pool_access(user, account, pool_id, act=act)
    try:
        node = get_node(pool, node_id)
    except BatchError:
        raise Http404("No such node.") from None
    node.pool = pool
    return access, node


def operator_accounts(user) -> QuerySet[Account]:
    """The accounts whose audit records and bulk operations the user may read."""
    if user.is_superuser:
        return Account.objects.all()
    strong = Q(memberships__user=user, memberships__role=OPERATOR) | Q(
        group_grants__group__user=user, group_grants__role=OPERATOR
    )
    return Account.objects.filter(pk__in=Account.objects.filter(strong).values("pk"))
