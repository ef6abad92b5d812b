"""What a pool specification may ask of batchsite: the rules Add Pool, Patch and auto pools
share, as plain functions over the wire dict (no database).

A pool's nodes are node agents from the provider its vmSize maps to (tasks.providers.sizes),
running the pool's tasks as processes: there is no virtual network to join, no custom VM
image to boot, no application package or certificate store. A specification that needs one
of those is refused with the error Batch gives for what it cannot resolve, rather than
accepted and silently ignored. Everything else (VM configuration, data disks, user
accounts, mount configuration, metadata, ...) is stored and returned as sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tasks.errors import BatchError
from tasks.models import NodeDeallocationOption
from tasks.providers import sizes
from tasks.timefmt import format_datetime_wire, format_duration

MIN_RESIZE_TIMEOUT = timedelta(minutes=5)
DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
MIN_EVALUATION_INTERVAL = timedelta(minutes=5)
MAX_EVALUATION_INTERVAL = timedelta(hours=168)
DEFAULT_EVALUATION_INTERVAL = timedelta(minutes=15)
CUSTOM_IMAGE_KEYS = ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId")

# Properties kept in Pool columns; the rest of a specification stays in Pool.spec.
COLUMNS = (
    "id",
    "vmSize",
    "taskSlotsPerNode",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "enableAutoScale",
    "autoScaleFormula",
    "autoScaleEvaluationInterval",
    "resizeTimeout",
)


def vm_size_of(vm_size: str) -> sizes.VmSize:
    """The deployment's entry for a vmSize. Refuses one it has none for (400
    InvalidPropertyValue vmSize), as Batch refuses a size the region does not offer."""
    size = sizes.lookup(vm_size)
    if size is None:
        raise BatchError.invalid_property(
            "vmSize",
            vm_size,
            "This batchsite deployment has no node size for this vmSize (BATCHSITE_VM_SIZES).",
        )
    return size


def check_task_slots(slots: int, size: sizes.VmSize) -> None:
    """taskSlotsPerNode: at least 1, at most the smaller of 4 x the size's cores and 256."""
    if not 1 <= slots <= size.max_task_slots:
        raise BatchError.invalid_property(
            "taskSlotsPerNode",
            slots,
            f"The value must be between 1 and {size.max_task_slots} (4 times the cores of the vmSize, at most 256).",
        )


def check_resize_timeout(value: timedelta | None, name: str = "resizeTimeout") -> None:
    if value is not None and value < MIN_RESIZE_TIMEOUT:
        raise BatchError.invalid_property(
            name, format_duration(value), "The minimum value is 5 minutes."
        )


def check_evaluation_interval(value: timedelta | None) -> None:
    if value is not None and not MIN_EVALUATION_INTERVAL <= value <= MAX_EVALUATION_INTERVAL:
        raise BatchError.invalid_property(
            "autoScaleEvaluationInterval",
            format_duration(value),
            "The value must be between 5 minutes and 168 hours.",
        )


def check_deallocation_option(value: str | None, name: str = "nodeDeallocationOption") -> str:
    """The option, defaulted to requeue (Batch's default)."""
    if value is None or value == "":
        return NodeDeallocationOption.REQUEUE
    if value not in NodeDeallocationOption.values:
        raise BatchError.invalid_property(
            name, value, "Use requeue, terminate, taskcompletion or retaineddata."
        )
    return value


def check_target(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BatchError.invalid_property(
            name, value, "The value must be a whole number of at least 0."
        )
    return value


def check_honourable(spec: dict, prefix: str = "") -> None:
    """Refuse what no batchsite node can do: join a virtual network (subnetId), boot a
    custom image or a Cloud Services configuration, provide application licenses (400
    InvalidPropertyValue), install application packages or certificates (409)."""
    network = spec.get("networkConfiguration") or {}
    if network.get("subnetId"):
        raise BatchError.invalid_property(
            f"{prefix}networkConfiguration.subnetId",
            network["subnetId"],
            "batchsite nodes cannot join a virtual network.",
        )
    image = (spec.get("virtualMachineConfiguration") or {}).get("imageReference") or {}
    for key in CUSTOM_IMAGE_KEYS:
        if image.get(key):
            raise BatchError.invalid_property(
                f"{prefix}virtualMachineConfiguration.imageReference.{key}",
                image[key],
                "batchsite cannot resolve a custom image; use a marketplace imageReference.",
            )
    if spec.get("cloudServiceConfiguration"):
        raise BatchError.invalid_property(
            f"{prefix}cloudServiceConfiguration",
            None,
            "Cloud Services Configuration pools are retired; use virtualMachineConfiguration.",
        )
    if spec.get("applicationLicenses"):
        raise BatchError.invalid_property(
            f"{prefix}applicationLicenses",
            ",".join(map(str, spec["applicationLicenses"])),
            "batchsite nodes have no licensed applications to make available.",
        )
    if spec.get("applicationPackageReferences"):
        raise BatchError(
            "InvalidApplicationPackageReferences",
            "One or more application package references could not be satisfied: batchsite has no applications.",
            409,
            [("PropertyName", f"{prefix}applicationPackageReferences")],
        )
    if spec.get("certificateReferences"):
        raise BatchError(
            "InvalidCertificateReferences",
            "One or more certificate references could not be satisfied: batchsite has no certificates.",
            409,
            [("PropertyName", f"{prefix}certificateReferences")],
        )


def check_auto_scale_settings(spec: dict, prefix: str = "") -> None:
    """enableAutoScale needs a formula and no fixed targets; without it, no formula."""
    if spec.get("enableAutoScale"):
        if not spec.get("autoScaleFormula"):
            raise BatchError.missing_property(f"{prefix}autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if spec.get(name) is not None:
                raise BatchError.invalid_property(
                    f"{prefix}{name}",
                    spec[name],
                    "Do not specify a target when enableAutoScale is true.",
                )
        check_evaluation_interval(spec.get("autoScaleEvaluationInterval"))
    elif spec.get("autoScaleFormula"):
        raise BatchError.invalid_property(
            f"{prefix}autoScaleFormula",
            None,
            "Specify autoScaleFormula only when enableAutoScale is true.",
        )


def check_user_accounts(spec: dict, prefix: str = "") -> None:
    """The pool's userAccounts have distinct names, and a linuxUserConfiguration gives uid
    and gid together or neither (as Batch requires); a start task that runs as a userName
    runs as one of them. Raises InvalidPropertyValue."""
    names: set[str] = set()
    for i, account in enumerate(spec.get("userAccounts") or []):
        name = account.get("name") or ""
        if name.lower() in names:
            raise BatchError.invalid_property(
                f"{prefix}userAccounts[{i}].name",
                name,
                "The pool already has a user account of this name.",
            )
        names.add(name.lower())
        linux = account.get("linuxUserConfiguration") or {}
        if (linux.get("uid") is None) != (linux.get("gid") is None):
            raise BatchError.invalid_property(
                f"{prefix}userAccounts[{i}].linuxUserConfiguration",
                None,
                "The uid and gid must be given together or not at all.",
            )
    identity = (spec.get("startTask") or {}).get("userIdentity") or {}
    user = identity.get("username")
    if user and user not in {a.get("name") for a in spec.get("userAccounts") or []}:
        raise BatchError.invalid_property(
            f"{prefix}startTask.userIdentity.username",
            user,
            "The pool has no user account of this name.",
        )


def check_pool_spec(spec: dict, prefix: str = "") -> sizes.VmSize:
    """Every rule of a pool specification (Add Pool, an auto pool's `pool`): returns the
    vmSize entry its nodes get. Raises InvalidPropertyValue, MissingRequiredProperty,
    InvalidApplicationPackageReferences or InvalidCertificateReferences."""
    if not spec.get("vmSize"):
        raise BatchError.missing_property(f"{prefix}vmSize")
    size = vm_size_of(spec["vmSize"])
    check_task_slots(spec.get("taskSlotsPerNode", 1), size)
    for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
        if spec.get(name) is not None:
            check_target(spec[name], f"{prefix}{name}")
    check_resize_timeout(spec.get("resizeTimeout"), f"{prefix}resizeTimeout")
    check_auto_scale_settings(spec, prefix)
    check_honourable(spec, prefix)
    check_user_accounts(spec, prefix)
    return size


def stored(spec: dict) -> dict:
    """The part of a specification kept in Pool.spec (what has no column), JSON-safe:
    durations and times in their wire form."""
    return {key: wire(value) for key, value in spec.items() if key not in COLUMNS}


def wire(value):
    """A value in JSON-safe wire form: durations and times as Batch writes them."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return format_datetime_wire(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value
