"""Add Pool and Get Pool: every BatchPoolCreateOptions (2025-06-01) and PoolAddParameter
(2024-02-01.19.0) property accepted, stored and returned; what batchsite can never honour
refused with Batch's error, and nothing stored."""

import copy
import json

import pytest

from tasks.models import Pool
from tests.conftest import error_code
from tests.factories import AccountFactory, PoolFactory

pytestmark = pytest.mark.django_db

OLD_API = "2024-02-01.19.0"
START_TASK = {
    "commandLine": "/bin/sh -c 'echo start'",
    "containerSettings": {
        "imageName": "ubuntu:22.04",
        "containerRunOptions": "--rm",
        "registry": {"registryServer": "docker.io", "username": "me", "password": "hunter2"},
        "workingDirectory": "taskWorkingDirectory",
        "containerHostBatchBindMounts": [{"source": "Shared", "isReadOnly": True}],
    },
    "resourceFiles": [
        {"httpUrl": "https://example.invalid/a.sh", "filePath": "a.sh", "fileMode": "0755"}
    ],
    "environmentSettings": [{"name": "MODE", "value": "fast"}],
    "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
    "maxTaskRetryCount": 2,
    "waitForSuccess": True,
}
# Every property of BatchPoolCreateOptions, nested ones included.
FULL = {
    "id": "full",
    "displayName": "every property",
    "vmSize": "standard_d2s_v3",
    "virtualMachineConfiguration": {
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
            "version": "latest",
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        "windowsConfiguration": {"enableAutomaticUpdates": False},
        "dataDisks": [
            {
                "lun": 0,
                "caching": "readwrite",
                "diskSizeGB": 128,
                "managedDisk": {
                    "storageAccountType": "premium_lrs",
                    "diskEncryptionSet": {"id": "/subscriptions/s/des"},
                    "securityProfile": {"securityEncryptionType": "VMGuestStateOnly"},
                },
            }
        ],
        "licenseType": "Windows_Server",
        "containerConfiguration": {
            "type": "dockerCompatible",
            "containerImageNames": ["ubuntu:22.04"],
            "containerRegistries": [
                {"registryServer": "r.io", "username": "u", "password": "registry-secret"}
            ],
        },
        "diskEncryptionConfiguration": {
            "targets": ["osdisk", "temporarydisk"],
            "customerManagedKey": {
                "keyUrl": "https://kv/keys/k",
                "rotationToLatestKeyVersionEnabled": True,
                "identityReference": {"resourceId": "/id"},
            },
        },
        "nodePlacementConfiguration": {"policy": "zonal"},
        "extensions": [
            {
                "name": "ext",
                "publisher": "Microsoft.Azure",
                "type": "CustomScript",
                "typeHandlerVersion": "2.1",
                "autoUpgradeMinorVersion": True,
                "enableAutomaticUpgrade": False,
                "settings": {"commandToExecute": "echo"},
                "protectedSettings": {"token": "ext-secret"},
                "provisionAfterExtensions": ["other"],
            }
        ],
        "osDisk": {
            "ephemeralOSDiskSettings": {"placement": "cachedisk"},
            "caching": "readonly",
            "diskSizeGB": 64,
            "managedDisk": {"storageAccountType": "standardssd_lrs"},
            "writeAcceleratorEnabled": False,
        },
        "securityProfile": {
            "encryptionAtHost": True,
            "securityType": "trustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
            "proxyAgentSettings": {
                "enabled": True,
                "imds": {"mode": "Audit"},
                "wireServer": {"mode": "Enforce", "inVMAccessControlProfileReferenceId": "x"},
            },
        },
        "serviceArtifactReference": {"id": "/subscriptions/s/artifact"},
    },
    "resizeTimeout": "PT10M",
    "targetDedicatedNodes": 0,
    "targetLowPriorityNodes": 0,
    "enableAutoScale": False,
    "enableInterNodeCommunication": True,
    "networkConfiguration": {
        "dynamicVNetAssignmentScope": "none",
        "endpointConfiguration": {
            "inboundNATPools": [
                {
                    "name": "ssh",
                    "protocol": "tcp",
                    "backendPort": 22,
                    "frontendPortRangeStart": 15000,
                    "frontendPortRangeEnd": 15100,
                    "networkSecurityGroupRules": [
                        {
                            "priority": 150,
                            "access": "allow",
                            "sourceAddressPrefix": "*",
                            "sourcePortRanges": ["*"],
                        }
                    ],
                }
            ]
        },
        "publicIPAddressConfiguration": {
            "provision": "batchmanaged",
            "ipFamilies": ["IPv4"],
            "ipTags": [{"ipTagType": "FirstPartyUsage", "tag": "x"}],
        },
        "enableAcceleratedNetworking": True,
    },
    "startTask": START_TASK,
    "taskSlotsPerNode": 4,
    "taskSchedulingPolicy": {"nodeFillType": "pack", "jobDefaultOrder": "creationtime"},
    "userAccounts": [
        {
            "name": "worker",
            "password": "user-secret",
            "elevationLevel": "admin",
            "linuxUserConfiguration": {"uid": 1200, "gid": 1200, "sshPrivateKey": "ssh-secret"},
            "windowsUserConfiguration": {"loginMode": "batch"},
        }
    ],
    "metadata": [{"name": "team", "value": "render"}],
    "mountConfiguration": [
        {
            "azureBlobFileSystemConfiguration": {
                "accountName": "acct",
                "containerName": "c",
                "accountKey": "blob-secret",
                "blobfuseOptions": "-o ro",
                "relativeMountPath": "blob",
            }
        },
        {
            "nfsMountConfiguration": {
                "source": "10.0.0.4:/data",
                "relativeMountPath": "nfs",
                "mountOptions": "ro",
            }
        },
        {
            "cifsMountConfiguration": {
                "username": "u",
                "source": "//srv/share",
                "relativeMountPath": "cifs",
                "password": "cifs-secret",
            }
        },
        {
            "azureFileShareConfiguration": {
                "accountName": "acct",
                "azureFileUrl": "https://acct.file/share",
                "accountKey": "file-secret",
                "relativeMountPath": "files",
            }
        },
    ],
    "upgradePolicy": {
        "mode": "rolling",
        "automaticOSUpgradePolicy": {
            "enableAutomaticOSUpgrade": True,
            "disableAutomaticRollback": False,
            "useRollingUpgradePolicy": True,
            "osRollingUpgradeDeferral": False,
        },
        "rollingUpgradePolicy": {
            "enableCrossZoneUpgrade": True,
            "maxBatchInstancePercent": 20,
            "maxUnhealthyInstancePercent": 20,
            "maxUnhealthyUpgradedInstancePercent": 20,
            "pauseTimeBetweenBatches": "PT1M",
            "prioritizeUnhealthyInstances": False,
            "rollbackFailedInstancesOnPolicyBreach": False,
        },
    },
}
SECRETS = (
    "hunter2",
    "registry-secret",
    "ext-secret",
    "user-secret",
    "ssh-secret",
    "blob-secret",
    "cifs-secret",
    "file-secret",
)


def get(batch, pool_id, **kw) -> dict:
    r = batch.get(f"/pools/{pool_id}", **kw)
    assert r.status_code == 200, r.content
    return json.loads(r.content)


def add(batch, body, **kw):
    return batch.post("/pools", body, **kw)


def without(value, keys):
    """The value without the given keys at any depth (what Get withholds)."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def test_every_property_is_stored_and_returned_except_secrets(batch):
    r = add(batch, FULL)
    assert r.status_code == 201, r.content
    got = get(batch, "full")
    expected = without(
        FULL, {"password", "accountKey", "sasKey", "sshPrivateKey", "protectedSettings"}
    )
    assert {k: got[k] for k in expected} == expected
    text = json.dumps(got)
    assert not [s for s in SECRETS if s in text]
    # The secrets are kept for the nodes, never shown.
    stored = json.dumps(Pool.objects.get(pool_id="full").spec)
    assert all(s in stored for s in SECRETS)


def test_a_minimal_pool_reads_back_with_the_defaults_batch_reports(batch):
    add(
        batch, {"id": "min", "vmSize": "standard_d2s_v3", "startTask": {"commandLine": "/bin/true"}}
    )
    got = get(batch, "min")
    assert got["startTask"] == {
        "commandLine": "/bin/true",
        "maxTaskRetryCount": 0,
        "waitForSuccess": True,
        "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
    }
    assert (got["taskSlotsPerNode"], got["taskSchedulingPolicy"], got["resizeTimeout"]) == (
        1,
        {"nodeFillType": "spread"},
        "PT15M",
    )
    assert (
        got["enableAutoScale"],
        got["enableInterNodeCommunication"],
        got["allocationState"],
    ) == (False, False, "steady")
    assert (got["currentDedicatedNodes"], got["currentLowPriorityNodes"]) == (0, 0)
    assert "autoScaleFormula" not in got and "resizeErrors" not in got


# The 14.x (2024-02-01.19.0) schema's own properties.
OLD_ONLY = {
    "certificateReferences": [],
    "resourceTags": {"cost": "centre"},
    "targetNodeCommunicationMode": "simplified",
}


def test_old_api_properties_are_kept_and_shown_only_to_old_api_versions(batch):
    r = add(
        batch,
        {
            "id": "old",
            "vmSize": "standard_d2s_v3",
            **OLD_ONLY,
            "virtualMachineConfiguration": {
                **FULL["virtualMachineConfiguration"],
                "dataDisks": [{"lun": 1, "diskSizeGB": 10, "storageAccountType": "standard_lrs"}],
            },
        },
        api_version=OLD_API,
    )
    assert r.status_code == 201, r.content
    old = get(batch, "old", api_version=OLD_API)
    assert {k: old.get(k) for k in OLD_ONLY} == OLD_ONLY
    assert old["virtualMachineConfiguration"]["dataDisks"] == [
        {"lun": 1, "diskSizeGB": 10, "storageAccountType": "standard_lrs"}
    ]
    new = get(batch, "old")
    assert not set(OLD_ONLY) & set(new)


def test_numbers_and_flags_sent_as_strings_are_read_as_batch_reads_them(batch):
    body = copy.deepcopy(FULL)
    body["taskSlotsPerNode"] = "4"
    body["virtualMachineConfiguration"]["dataDisks"][0]["lun"] = "0"
    body["startTask"]["maxTaskRetryCount"] = " 2 "
    body["startTask"]["waitForSuccess"] = "True"
    body["enableInterNodeCommunication"] = "true"
    assert add(batch, body).status_code == 201
    got = get(batch, "full")
    assert (
        got["taskSlotsPerNode"] == 4
        and got["virtualMachineConfiguration"]["dataDisks"][0]["lun"] == 0
    )
    assert (got["startTask"]["maxTaskRetryCount"], got["startTask"]["waitForSuccess"]) == (2, True)
    assert got["enableInterNodeCommunication"] is True


def test_enums_are_read_in_any_case_and_returned_as_batch_spells_them(batch):
    body = copy.deepcopy(FULL)
    body["taskSchedulingPolicy"] = {"nodeFillType": "Pack"}
    body["virtualMachineConfiguration"]["containerConfiguration"]["type"] = "DockerCompatible"
    assert add(batch, body).status_code == 201
    got = get(batch, "full")
    assert got["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    assert (
        got["virtualMachineConfiguration"]["containerConfiguration"]["type"] == "dockerCompatible"
    )


def refusal(batch, body, **kw) -> tuple[int, str, dict]:
    r = add(batch, body, **kw)
    assert not Pool.objects.filter(pool_id=body.get("id")).exists()
    payload = json.loads(r.content)
    return r.status_code, payload["code"], {v["key"]: v["value"] for v in payload.get("values", [])}


def with_change(path: str, value) -> dict:
    body = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "networkConfiguration.subnetId",
            "/subscriptions/s/subnets/default",
            (400, "InvalidPropertyValue", "networkConfiguration.subnetId"),
        ),
        (
            "virtualMachineConfiguration.imageReference.virtualMachineImageId",
            "/subscriptions/s/images/mine",
            (
                400,
                "InvalidPropertyValue",
                "virtualMachineConfiguration.imageReference.virtualMachineImageId",
            ),
        ),
        (
            "virtualMachineConfiguration.imageReference.sharedGalleryImageId",
            "/sharedGalleries/g/images/i",
            (
                400,
                "InvalidPropertyValue",
                "virtualMachineConfiguration.imageReference.sharedGalleryImageId",
            ),
        ),
        (
            "virtualMachineConfiguration.imageReference.communityGalleryImageId",
            "/communityGalleries/g/images/i",
            (
                400,
                "InvalidPropertyValue",
                "virtualMachineConfiguration.imageReference.communityGalleryImageId",
            ),
        ),
        (
            "cloudServiceConfiguration",
            {"osFamily": "6"},
            (400, "InvalidPropertyValue", "cloudServiceConfiguration"),
        ),
        ("applicationLicenses", ["maya"], (400, "InvalidPropertyValue", "applicationLicenses")),
        (
            "applicationPackageReferences",
            [{"applicationId": "app"}],
            (409, "InvalidApplicationPackageReferences", "applicationPackageReferences"),
        ),
        (
            "certificateReferences",
            [{"thumbprint": "ab", "thumbprintAlgorithm": "sha1"}],
            (409, "InvalidCertificateReferences", "certificateReferences"),
        ),
        ("vmSize", KeyError, (400, "MissingRequiredProperty", "vmSize")),
        (
            "virtualMachineConfiguration.nodeAgentSKUId",
            KeyError,
            (400, "MissingRequiredProperty", "virtualMachineConfiguration.nodeAgentSKUId"),
        ),
        (
            "virtualMachineConfiguration.dataDisks.0.diskSizeGB",
            KeyError,
            (400, "MissingRequiredProperty", "virtualMachineConfiguration.dataDisks[0].diskSizeGB"),
        ),
        (
            "startTask.commandLine",
            KeyError,
            (400, "MissingRequiredProperty", "startTask.commandLine"),
        ),
        (
            "userAccounts.0.password",
            KeyError,
            (400, "MissingRequiredProperty", "userAccounts[0].password"),
        ),
        (
            "mountConfiguration.2.cifsMountConfiguration.source",
            KeyError,
            (400, "MissingRequiredProperty", "mountConfiguration[2].cifsMountConfiguration.source"),
        ),
        (
            "virtualMachineConfiguration.osDisk.colour",
            "red",
            (400, "UnsupportedProperty", "virtualMachineConfiguration.osDisk.colour"),
        ),
        (
            "taskSchedulingPolicy.nodeFillType",
            "random",
            (400, "InvalidPropertyValue", "taskSchedulingPolicy.nodeFillType"),
        ),
        (
            "networkConfiguration.endpointConfiguration.inboundNATPools.0.backendPort",
            70000,
            (
                400,
                "InvalidPropertyValue",
                "networkConfiguration.endpointConfiguration.inboundNATPools[0].backendPort",
            ),
        ),
        ("taskSlotsPerNode", 0, (400, "InvalidPropertyValue", "taskSlotsPerNode")),
        ("resizeTimeout", "PT1M", (400, "InvalidPropertyValue", "resizeTimeout")),
        ("vmSize", 5, (400, "InvalidRequestBody", None)),
    ],
)
def test_what_batchsite_cannot_honour_or_read_is_refused_as_batch_refuses_it(
    batch, path, value, expected
):
    status, code, values = refusal(batch, with_change(path, value))
    assert (status, code) == expected[:2]
    if expected[2] is not None:
        assert values["PropertyName"] == expected[2]


def test_autoscale_settings_are_refused_as_batch_refuses_them(batch):
    base = {"id": "a", "vmSize": "standard_d2s_v3"}
    assert refusal(batch, {**base, "enableAutoScale": True})[:2] == (400, "MissingRequiredProperty")
    assert refusal(
        batch, {**base, "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes = ;"}
    )[:2] == (400, "AutoScalingFormulaSyntaxError")
    assert refusal(
        batch,
        {
            **base,
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes = 1;",
            "targetDedicatedNodes": 1,
        },
    )[:2] == (400, "InvalidPropertyValue")
    assert refusal(
        batch,
        {
            **base,
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes = 1;",
            "autoScaleEvaluationInterval": "PT1M",
        },
    )[:2] == (400, "InvalidPropertyValue")


def test_an_autoscaled_pool_is_evaluated_as_it_is_added(batch):
    r = add(
        batch,
        {
            "id": "a",
            "vmSize": "standard_d2s_v3",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes = 2;",
            "autoScaleEvaluationInterval": "PT6M",
        },
    )
    assert r.status_code == 201, r.content
    got = get(batch, "a")
    assert (
        got["enableAutoScale"],
        got["autoScaleFormula"],
        got["autoScaleEvaluationInterval"],
    ) == (True, "$TargetDedicatedNodes = 2;", "PT6M")
    assert got["targetDedicatedNodes"] == 2 and got["allocationState"] == "resizing"
    assert got["autoScaleRun"]["results"].startswith("$TargetDedicatedNodes=2;")


def test_get_honours_if_none_match_and_another_accounts_pool_is_not_found(batch, account):
    pool = PoolFactory(account=account, pool_id="mine")
    PoolFactory(account=AccountFactory(), pool_id="theirs")
    r = batch.get("/pools/mine", headers={"If-None-Match": f'"{pool.etag}"'})
    assert r.status_code == 304
    r = batch.get("/pools/theirs")
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")
    assert batch.head("/pools/theirs").status_code == 404


def test_expand_stats_reports_the_current_nodes(batch, account):
    from tests.factories import ComputeNodeFactory

    pool = PoolFactory(account=account, pool_id="s")
    ComputeNodeFactory(pool=pool, cpu_percent=20.0, memory_bytes=2 * 1024**3)
    ComputeNodeFactory(pool=pool, cpu_percent=40.0, memory_bytes=4 * 1024**3)
    stats = get(batch, "s", params={"$expand": "stats"})["stats"]
    assert stats["url"] == "http://testserver/pools/s"
    assert stats["resourceStats"]["avgCPUPercentage"] == 30.0
    assert (stats["resourceStats"]["avgMemoryGiB"], stats["resourceStats"]["peakMemoryGiB"]) == (
        3.0,
        4.0,
    )
    assert stats["resourceStats"]["diskReadIOps"] == "0"  # int64: a string on 2025-06-01
    assert (
        get(batch, "s", params={"$expand": "stats"}, api_version=OLD_API)["stats"]["resourceStats"][
            "diskReadIOps"
        ]
        == 0
    )
    assert "stats" not in get(batch, "s")


def test_list_with_stats_pins_its_queries(batch, account, django_assert_num_queries):
    from tests.factories import ComputeNodeFactory

    for _ in range(6):
        ComputeNodeFactory(pool=PoolFactory(account=account))
    with django_assert_num_queries(
        4
    ):  # the account, one page, its node counts, its node statistics
        r = batch.get("/pools", params={"$expand": "stats"})
    assert len(json.loads(r.content)["value"]) == 6
