"""factory-boy factories with Sequence ids and traits for states."""

import base64
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from tasks.models import (
    Account,
    AccountMembership,
    Attempt,
    BulkOperation,
    ComputeNode,
    Job,
    Pool,
    SubTask,
    Task,
)
from tasks.operations.counts import recount_job


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"acct{n}")
    primary_key = factory.Sequence(
        lambda n: base64.b64encode(f"primary-key-{n:032d}".encode()).decode()
    )
    secondary_key = factory.Sequence(
        lambda n: base64.b64encode(f"second-key-{n:033d}".encode()).decode()
    )


class PoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pool

    account = factory.SubFactory(AccountFactory)
    pool_id = factory.Sequence(lambda n: f"pool{n}")
    id_key = factory.LazyAttribute(lambda o: o.pool_id.lower())
    etag = "0x8D0000000000001"
    creation_time = factory.LazyFunction(timezone.now)
    last_modified = factory.LazyFunction(timezone.now)
    state_transition_time = factory.LazyFunction(timezone.now)


class ComputeNodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ComputeNode

    pool = factory.SubFactory(PoolFactory)
    node_id = factory.Sequence(lambda n: f"node-{n}")
    state = ComputeNode.State.IDLE
    slots = 2
    registered = factory.LazyFunction(timezone.now)
    last_heartbeat = factory.LazyFunction(timezone.now)
    state_transition_time = factory.LazyFunction(timezone.now)


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    job_id = factory.Sequence(lambda n: f"job{n}")
    id_key = factory.LazyAttribute(lambda o: o.job_id.lower())
    pool_id = "pool"
    etag = "0x8D0000000000002"
    state_transition_time = factory.LazyFunction(timezone.now)
    creation_time = factory.LazyFunction(timezone.now)
    last_modified = factory.LazyFunction(timezone.now)
    start_time = factory.LazyFunction(timezone.now)

    class Params:
        completed = factory.Trait(state=Job.State.COMPLETED)
        terminating = factory.Trait(state=Job.State.TERMINATING)
        deleting = factory.Trait(state=Job.State.DELETING)
        disabled = factory.Trait(state=Job.State.DISABLED)


class TaskFactory(factory.django.DjangoModelFactory):
    """Tasks made here bypass the rules layer; `recount` keeps the job's counters true."""

    class Meta:
        model = Task
        skip_postgeneration_save = True

    job = factory.SubFactory(JobFactory)
    task_id = factory.Sequence(lambda n: f"task{n}")
    id_key = factory.LazyAttribute(lambda o: o.task_id.lower())
    command_line = "/bin/true"
    retention_time = timedelta(days=7)
    etag = "0x8D0000000000003"
    state_transition_time = factory.LazyFunction(timezone.now)
    creation_time = factory.LazyFunction(timezone.now)
    last_modified = factory.LazyFunction(timezone.now)

    class Params:
        running = factory.Trait(
            state=Task.State.RUNNING,
            previous_state=Task.State.ACTIVE,
            start_time=factory.LazyFunction(timezone.now),
        )
        succeeded = factory.Trait(
            state=Task.State.COMPLETED,
            previous_state=Task.State.RUNNING,
            start_time=factory.LazyFunction(timezone.now),
            end_time=factory.LazyFunction(timezone.now),
            exit_code=0,
            result=Task.Result.SUCCESS,
        )
        failed = factory.Trait(
            state=Task.State.COMPLETED,
            previous_state=Task.State.RUNNING,
            start_time=factory.LazyFunction(timezone.now),
            end_time=factory.LazyFunction(timezone.now),
            exit_code=1,
            result=Task.Result.FAILURE,
            failure_info={
                "category": "usererror",
                "code": "FailureExitCode",
                "message": "The task exited with an exit code representing a failure",
            },
        )
        multi_instance = factory.Trait(
            number_of_instances=2,
            spec={
                "multiInstanceSettings": {
                    "numberOfInstances": 2,
                    "coordinationCommandLine": "/bin/true",
                }
            },
        )

    @factory.post_generation
    def recount(obj, create, extracted, **kwargs):
        if create:
            recount_job(obj.job)


class SubTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubTask

    task = factory.SubFactory(TaskFactory, multi_instance=True)
    subtask_id = factory.Sequence(lambda n: n + 1)
    state = SubTask.State.RUNNING
    state_transition_time = factory.LazyFunction(timezone.now)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountMembership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = AccountMembership.Role.OPERATOR


class AttemptFactory(factory.django.DjangoModelFactory):
    """One run of a task on a node; defaults to a finished, succeeded run."""

    class Meta:
        model = Attempt

    task = factory.SubFactory(TaskFactory)
    job = factory.LazyAttribute(lambda o: o.task.job)
    node = None
    node_name = factory.LazyAttribute(lambda o: o.node.node_id if o.node else "node-x")
    claimed = factory.LazyFunction(timezone.now)
    start_time = factory.LazyAttribute(lambda o: o.claimed)
    end_time = factory.LazyAttribute(lambda o: o.claimed + timedelta(seconds=5))
    exit_code = 0
    outcome = Attempt.Outcome.SUCCEEDED


class BulkOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BulkOperation

    job = factory.SubFactory(JobFactory)
    account = factory.LazyAttribute(lambda o: o.job.account)
    action = "reactivate"
    scope = factory.LazyFunction(
        lambda: {"filter": {"result": "failure"}, "max_pk": 10**9, "cursor": 0}
    )
