"""The slurm node provider where no controller is needed: its errors, its options, its
job names (Slurm's commands only, or nothing of Slurm at all)."""

from __future__ import annotations

import shutil

import pytest

from tasks.models import Pool
from tasks.operations.pools import add_pool
from tasks.operations.reconcile import Reconciler
from tasks.providers.base import NodeLaunch, ProviderError
from tasks.providers.slurm import SlurmProvider, job_name, parse_job_name
from tests.factories import AccountFactory


def launch(**options) -> NodeLaunch:
    return NodeLaunch(account="a", pool_id="p", node_id="n", slots=1, options=options)


@pytest.fixture
def unreachable_controller(tmp_path, monkeypatch):
    """Slurm's commands pointed at a controller on a port nothing listens on (with a short
    MessageTimeout, so that each command gives up at once instead of retrying for ~9 s)."""
    if not shutil.which("sbatch"):
        pytest.skip("Slurm's commands are not installed (apt-get install slurm-client)")
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=gone\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\nMessageTimeout=1\n"
        "NodeName=n1 NodeAddr=127.0.0.1 CPUs=1\nPartitionName=p Nodes=n1 Default=YES\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))


@pytest.mark.django_db
def test_an_unreachable_controller_is_a_provider_error_on_every_call(unreachable_controller):
    provider = SlurmProvider()
    for call, code in [
        (lambda: provider.start(launch(log_dir="")), "AllocationFailed"),
        (provider.running, "AllocationFailed"),
        (lambda: provider.stop("12", graceful=True), "RemoveNodesFailed"),
        (lambda: provider.stop("12", graceful=False), "RemoveNodesFailed"),
    ]:
        with pytest.raises(ProviderError) as failed:
            call()
        assert failed.value.code == code
        assert "Unable to contact slurm controller" in failed.value.message


@pytest.mark.django_db
def test_a_pool_on_an_unreachable_slurm_gets_a_resize_error_with_slurms_reason(
    unreachable_controller, settings
):
    settings.BATCHSITE_VM_SIZES = {"*": {"provider": "slurm", "options": {"log_dir": ""}}}
    pool = add_pool(
        AccountFactory(), spec={"id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1}
    )
    Reconciler().run_pass()  # the registry's own SlurmProvider, as `manage.py reconcile` has it

    [error] = Pool.objects.get(pk=pool.pk).resize_errors  # why the pool does not grow: never a 500
    assert error["code"] == "AllocationFailed"
    assert "Unable to contact slurm controller" in error["message"]
    assert {"name": "Provider", "value": "slurm"} in error["values"]


@pytest.mark.django_db
def test_missing_slurm_commands_are_a_provider_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProviderError, match="not installed"):
        SlurmProvider().running()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partiton": "batch"}, "Unknown slurm provider option"),
        ({"sbatch_args": "--mem=1G"}, "sbatch_args must be a list of strings"),
        ({"time": 60}, "time must be a string"),
    ],
)
def test_malformed_options_are_a_provider_error_before_anything_is_submitted(options, message):
    with pytest.raises(ProviderError, match=message) as refused:
        SlurmProvider(instance="never-submitted").start(launch(**options))
    assert refused.value.code == "AllocationFailed"


@pytest.mark.django_db
def test_a_handle_that_is_not_a_job_id_is_refused():
    with pytest.raises(ProviderError, match="not a Slurm job id"):
        SlurmProvider().stop("local:123", graceful=True)


def test_a_job_name_carries_instance_account_pool_and_node_both_ways():
    name = job_name("k1", "acc:1", "pool_1", "node.with.dots")
    assert parse_job_name(name, "k1") == ("acc:1", "pool_1", "node.with.dots")
    assert parse_job_name(name, "k2") is None
    assert parse_job_name("batchsite-something-else", "k1") is None
    assert "," not in job_name("k1", "a,b", "p", "n")  # squeue --name takes a comma-separated list
