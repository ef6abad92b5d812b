"""The vmSize table (BATCHSITE_VM_SIZES): parsing, validation and matching."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tasks.providers import sizes
from tasks.providers.checks import vm_size_table


def test_unset_every_vm_size_is_a_local_node():
    table = sizes.parse_table({})
    assert sizes.lookup("Standard_D2s_v3", table) == sizes.VmSize(provider="local")
    assert sizes.lookup("anything at all", table).max_task_slots == 256


def test_an_exact_name_wins_over_patterns_and_patterns_go_in_order():
    table = sizes.parse_table(
        {
            "*": {"provider": "local"},
            "standard_nc*": {"provider": "slurm", "cores": 6, "options": {"partition": "gpu"}},
            "standard_n*": {"provider": "slurm", "cores": 2},
            "Standard_NC24": {"provider": "slurm", "cores": 24},
        }
    )
    assert sizes.lookup("STANDARD_NC24", table).cores == 24
    assert sizes.lookup("standard_nc6", table) == sizes.VmSize("slurm", 6, {"partition": "gpu"})
    assert sizes.lookup("standard_nv12", table).cores == 2
    assert sizes.lookup("standard_d2s_v3", table).provider == "local"


def test_without_a_default_other_sizes_have_no_entry():
    table = sizes.parse_table({"standard_d2s_v3": {"provider": "local"}})
    assert sizes.lookup("standard_d4s_v3", table) is None


def test_task_slots_are_four_times_the_cores_and_never_above_256():
    assert sizes.VmSize("local", cores=3).max_task_slots == 12
    assert sizes.VmSize("local", cores=100).max_task_slots == 256


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"a": "local"}, "must be an object"),
        ({"a": {"provider": "kubernetes"}}, "provider must be one of"),
        ({"a": {}}, "provider must be one of"),
        ({"a": {"provider": "local", "cores": 0}}, "cores must be"),
        ({"a": {"provider": "local", "cores": True}}, "cores must be"),
        ({"a": {"provider": "local", "options": []}}, "options must be an object"),
        ({"a": {"provider": "local", "slots": 2}}, "unknown keys"),
    ],
)
def test_a_bad_table_is_improperly_configured_with_the_entry_named(raw, words):
    with pytest.raises(ImproperlyConfigured) as info:
        sizes.parse_table(raw)
    assert words in str(info.value) and "BATCHSITE_VM_SIZES['a']" in str(info.value)


def test_the_setting_is_read_as_it_stands(settings):
    settings.BATCHSITE_VM_SIZES = {"x": {"provider": "slurm"}}
    assert sizes.lookup("X").provider == "slurm" and sizes.lookup("y") is None
    settings.BATCHSITE_VM_SIZES = {}
    assert sizes.lookup("y").provider == "local"


def test_a_bad_table_fails_the_system_check(settings):
    assert vm_size_table(None) == []
    settings.BATCHSITE_VM_SIZES = {"a": {"provider": "nomad"}}
    (error,) = vm_size_table(None)
    assert error.id == "batchsite.E101" and "BATCHSITE_VM_SIZES['a']" in error.msg
