"""Wire shapes of the Pool and Compute Node request bodies, named after the Batch schemas.

One serializer per body accepts what either supported api-version defines: 2025-06-01's
BatchPoolCreateOptions (15.x) and 2024-02-01.19.0's PoolAddParameter (14.2.0, the Azure
CLI), so `certificateReferences`, `resourceTags`, `targetNodeCommunicationMode`,
`applicationLicenses` and `cloudServiceConfiguration` are read too. Names, JSON types
(numbers and booleans also as strings, as the CLI sends them), enums, required-ness and
nesting are checked here; what batchsite can or cannot honour is the rules layer's
(tasks.operations.pool_specs).
"""

from __future__ import annotations

from rest_framework import serializers

from tasks.models import DISABLE_SCHEDULING_OPTIONS, NodeDeallocationOption

from .serializers import (
    ApplicationPackageReferenceSerializer,
    BatchIdField,
    DurationField,
    EnumField,
    EnvironmentSettingSerializer,
    MetadataItemSerializer,
    ResourceFileSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    UserIdentitySerializer,
    WireSerializer,
)

ELEVATION = ["nonadmin", "admin"]
CACHING = ["none", "readonly", "readwrite"]
STORAGE_ACCOUNT_TYPES = ["standard_lrs", "premium_lrs", "standardssd_lrs"]
NODE_DEALLOCATION_OPTIONS = NodeDeallocationOption.values
NODE_REBOOT_OPTIONS = NODE_DEALLOCATION_OPTIONS  # BatchNodeRebootKind
NODE_REIMAGE_OPTIONS = NODE_DEALLOCATION_OPTIONS
NODE_DISABLE_SCHEDULING_OPTIONS = [o.value for o in DISABLE_SCHEDULING_OPTIONS]


def _text(**kwargs) -> StrictCharField:
    kwargs.setdefault("required", False)
    return StrictCharField(**kwargs)


def _texts(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=StrictCharField(), required=False, **kwargs)


def _flag() -> StrictBooleanField:
    return StrictBooleanField(required=False)


# --- identities, containers --------------------------------------------------------------


class NodeIdentityReferenceSerializer(WireSerializer):
    resourceId = _text()


class ContainerRegistrySerializer(WireSerializer):
    username = _text()
    password = _text()
    registryServer = _text()
    identityReference = NodeIdentityReferenceSerializer(required=False)


class ContainerHostBatchBindMountSerializer(WireSerializer):
    source = EnumField(
        ["Shared", "Startup", "VfsMounts", "Task", "JobPrep", "Applications"], required=False
    )
    isReadOnly = _flag()


class StartTaskContainerSettingsSerializer(WireSerializer):
    imageName = StrictCharField()
    containerRunOptions = _text(allow_blank=True)
    registry = ContainerRegistrySerializer(required=False)
    workingDirectory = EnumField(["taskWorkingDirectory", "containerImageDefault"], required=False)
    containerHostBatchBindMounts = ContainerHostBatchBindMountSerializer(many=True, required=False)


class StartTaskSerializer(WireSerializer):
    """BatchStartTask / StartTask."""

    commandLine = StrictCharField(max_length=32768)
    containerSettings = StartTaskContainerSettingsSerializer(required=False)
    resourceFiles = ResourceFileSerializer(many=True, required=False)
    environmentSettings = EnvironmentSettingSerializer(many=True, required=False)
    userIdentity = UserIdentitySerializer(required=False)
    maxTaskRetryCount = StrictIntegerField(required=False, min_value=-1)
    waitForSuccess = _flag()


class CertificateReferenceSerializer(WireSerializer):
    """CertificateReference (api-versions before 2025-06-01)."""

    thumbprint = StrictCharField()
    thumbprintAlgorithm = StrictCharField()
    storeLocation = EnumField(["currentuser", "localmachine"], required=False)
    storeName = _text()
    visibility = serializers.ListField(
        child=EnumField(["starttask", "task", "remoteuser"]), required=False
    )


# --- virtual machine configuration -------------------------------------------------------


class ImageReferenceSerializer(WireSerializer):
    publisher = _text()
    offer = _text()
    sku = _text()
    version = _text()
    virtualMachineImageId = _text()
    exactVersion = _text()
    sharedGalleryImageId = _text()
    communityGalleryImageId = _text()


class WindowsConfigurationSerializer(WireSerializer):
    enableAutomaticUpdates = _flag()


class DiskEncryptionSetSerializer(WireSerializer):
    id = _text()


class VmDiskSecurityProfileSerializer(WireSerializer):
    securityEncryptionType = EnumField(
        ["DiskWithVMGuestState", "NonPersistedTPM", "VMGuestStateOnly"], required=False
    )


class ManagedDiskSerializer(WireSerializer):
    diskEncryptionSet = DiskEncryptionSetSerializer(required=False)
    storageAccountType = EnumField(STORAGE_ACCOUNT_TYPES, required=False)
    securityProfile = VmDiskSecurityProfileSerializer(required=False)


class DataDiskSerializer(WireSerializer):
    lun = StrictIntegerField(min_value=0)
    caching = EnumField(CACHING, required=False)
    diskSizeGB = StrictIntegerField(min_value=1)
    managedDisk = ManagedDiskSerializer(required=False)  # 2025-06-01
    storageAccountType = EnumField(STORAGE_ACCOUNT_TYPES, required=False)  # before 2025-06-01


class ContainerConfigurationSerializer(WireSerializer):
    type = EnumField(["dockerCompatible", "criCompatible"])
    containerImageNames = _texts()
    containerRegistries = ContainerRegistrySerializer(many=True, required=False)


class PoolIdentityReferenceSerializer(WireSerializer):
    resourceId = _text()


class DiskCustomerManagedKeySerializer(WireSerializer):
    identityReference = PoolIdentityReferenceSerializer(required=False)
    keyUrl = _text()
    rotationToLatestKeyVersionEnabled = _flag()


class DiskEncryptionConfigurationSerializer(WireSerializer):
    customerManagedKey = DiskCustomerManagedKeySerializer(required=False)
    targets = serializers.ListField(child=EnumField(["osdisk", "temporarydisk"]), required=False)


class NodePlacementConfigurationSerializer(WireSerializer):
    policy = EnumField(["regional", "zonal"], required=False)


class VMExtensionSerializer(WireSerializer):
    name = StrictCharField()
    publisher = StrictCharField()
    type = StrictCharField()
    typeHandlerVersion = _text()
    autoUpgradeMinorVersion = _flag()
    enableAutomaticUpgrade = _flag()
    settings = serializers.DictField(required=False)
    protectedSettings = serializers.DictField(required=False)
    provisionAfterExtensions = _texts()


class DiffDiskSettingsSerializer(WireSerializer):
    placement = EnumField(["cachedisk"], required=False)


class OSDiskSerializer(WireSerializer):
    ephemeralOSDiskSettings = DiffDiskSettingsSerializer(required=False)
    caching = EnumField(CACHING, required=False)
    diskSizeGB = StrictIntegerField(required=False, min_value=1)
    managedDisk = ManagedDiskSerializer(required=False)
    writeAcceleratorEnabled = _flag()


class HostEndpointSettingsSerializer(WireSerializer):
    inVMAccessControlProfileReferenceId = _text()
    mode = EnumField(["Audit", "Enforce"], required=False)


class ProxyAgentSettingsSerializer(WireSerializer):
    enabled = _flag()
    imds = HostEndpointSettingsSerializer(required=False)
    wireServer = HostEndpointSettingsSerializer(required=False)


class UefiSettingsSerializer(WireSerializer):
    secureBootEnabled = _flag()
    vTpmEnabled = _flag()


class SecurityProfileSerializer(WireSerializer):
    encryptionAtHost = _flag()
    proxyAgentSettings = ProxyAgentSettingsSerializer(required=False)
    securityType = EnumField(["trustedLaunch", "confidentialvm"], required=False)
    uefiSettings = UefiSettingsSerializer(required=False)


class ServiceArtifactReferenceSerializer(WireSerializer):
    id = StrictCharField()


class VirtualMachineConfigurationSerializer(WireSerializer):
    imageReference = ImageReferenceSerializer()
    nodeAgentSKUId = StrictCharField()
    windowsConfiguration = WindowsConfigurationSerializer(required=False)
    dataDisks = DataDiskSerializer(many=True, required=False)
    licenseType = _text()
    containerConfiguration = ContainerConfigurationSerializer(required=False)
    diskEncryptionConfiguration = DiskEncryptionConfigurationSerializer(required=False)
    nodePlacementConfiguration = NodePlacementConfigurationSerializer(required=False)
    extensions = VMExtensionSerializer(many=True, required=False)
    osDisk = OSDiskSerializer(required=False)
    securityProfile = SecurityProfileSerializer(required=False)
    serviceArtifactReference = ServiceArtifactReferenceSerializer(required=False)


class CloudServiceConfigurationSerializer(WireSerializer):
    """Before 2025-06-01 only; batchsite refuses it (tasks.operations.pool_specs)."""

    osFamily = StrictCharField()
    osVersion = _text()


# --- network -----------------------------------------------------------------------------


class NetworkSecurityGroupRuleSerializer(WireSerializer):
    priority = StrictIntegerField()
    access = EnumField(["allow", "deny"])
    sourceAddressPrefix = StrictCharField()
    sourcePortRanges = _texts()


class InboundNatPoolSerializer(WireSerializer):
    name = StrictCharField()
    protocol = EnumField(["tcp", "udp"])
    backendPort = StrictIntegerField(min_value=1, max_value=65535)
    frontendPortRangeStart = StrictIntegerField(min_value=1, max_value=65534)
    frontendPortRangeEnd = StrictIntegerField(min_value=1, max_value=65535)
    networkSecurityGroupRules = NetworkSecurityGroupRuleSerializer(many=True, required=False)


class PoolEndpointConfigurationSerializer(WireSerializer):
    inboundNATPools = InboundNatPoolSerializer(many=True)


class IPTagSerializer(WireSerializer):
    ipTagType = _text()
    tag = _text()


class PublicIpAddressConfigurationSerializer(WireSerializer):
    provision = EnumField(["batchmanaged", "usermanaged", "nopublicipaddresses"], required=False)
    ipFamilies = serializers.ListField(child=EnumField(["IPv4", "IPv6"]), required=False)
    ipAddressIds = _texts()
    ipTags = IPTagSerializer(many=True, required=False)


class NetworkConfigurationSerializer(WireSerializer):
    subnetId = _text()
    dynamicVNetAssignmentScope = EnumField(["none", "job"], required=False)
    endpointConfiguration = PoolEndpointConfigurationSerializer(required=False)
    publicIPAddressConfiguration = PublicIpAddressConfigurationSerializer(required=False)
    enableAcceleratedNetworking = _flag()


# --- users, mounts, upgrades, scheduling -------------------------------------------------


class LinuxUserConfigurationSerializer(WireSerializer):
    uid = StrictIntegerField(required=False)
    gid = StrictIntegerField(required=False)
    sshPrivateKey = _text()


class WindowsUserConfigurationSerializer(WireSerializer):
    loginMode = EnumField(["batch", "interactive"], required=False)


class UserAccountSerializer(WireSerializer):
    name = StrictCharField()
    password = StrictCharField()
    elevationLevel = EnumField(ELEVATION, required=False)
    linuxUserConfiguration = LinuxUserConfigurationSerializer(required=False)
    windowsUserConfiguration = WindowsUserConfigurationSerializer(required=False)


class AzureBlobFileSystemConfigurationSerializer(WireSerializer):
    accountName = StrictCharField()
    containerName = StrictCharField()
    accountKey = _text()
    sasKey = _text()
    blobfuseOptions = _text(allow_blank=True)
    relativeMountPath = StrictCharField()
    identityReference = NodeIdentityReferenceSerializer(required=False)


class NfsMountConfigurationSerializer(WireSerializer):
    source = StrictCharField()
    relativeMountPath = StrictCharField()
    mountOptions = _text(allow_blank=True)


class CifsMountConfigurationSerializer(WireSerializer):
    username = StrictCharField()
    source = StrictCharField()
    relativeMountPath = StrictCharField()
    mountOptions = _text(allow_blank=True)
    password = StrictCharField()


class AzureFileShareConfigurationSerializer(WireSerializer):
    accountName = StrictCharField()
    azureFileUrl = StrictCharField()
    accountKey = StrictCharField()
    relativeMountPath = StrictCharField()
    mountOptions = _text(allow_blank=True)


class MountConfigurationSerializer(WireSerializer):
    azureBlobFileSystemConfiguration = AzureBlobFileSystemConfigurationSerializer(required=False)
    nfsMountConfiguration = NfsMountConfigurationSerializer(required=False)
    cifsMountConfiguration = CifsMountConfigurationSerializer(required=False)
    azureFileShareConfiguration = AzureFileShareConfigurationSerializer(required=False)


class AutomaticOsUpgradePolicySerializer(WireSerializer):
    disableAutomaticRollback = _flag()
    enableAutomaticOSUpgrade = _flag()
    useRollingUpgradePolicy = _flag()
    osRollingUpgradeDeferral = _flag()


class RollingUpgradePolicySerializer(WireSerializer):
    enableCrossZoneUpgrade = _flag()
    maxBatchInstancePercent = StrictIntegerField(required=False, min_value=5, max_value=100)
    maxUnhealthyInstancePercent = StrictIntegerField(required=False, min_value=5, max_value=100)
    maxUnhealthyUpgradedInstancePercent = StrictIntegerField(
        required=False, min_value=0, max_value=100
    )
    pauseTimeBetweenBatches = DurationField(required=False)
    prioritizeUnhealthyInstances = _flag()
    rollbackFailedInstancesOnPolicyBreach = _flag()


class UpgradePolicySerializer(WireSerializer):
    mode = EnumField(["automatic", "manual", "rolling"])
    automaticOSUpgradePolicy = AutomaticOsUpgradePolicySerializer(required=False)
    rollingUpgradePolicy = RollingUpgradePolicySerializer(required=False)


class TaskSchedulingPolicySerializer(WireSerializer):
    nodeFillType = EnumField(["spread", "pack"])
    jobDefaultOrder = EnumField(["none", "creationtime"], required=False)  # 2025-06-01


# --- pool bodies -------------------------------------------------------------------------


class PoolSpecificationSerializer(WireSerializer):
    """BatchPoolSpecification / PoolSpecification: an auto pool's `pool`, and every
    property of Add Pool but its id."""

    displayName = _text(max_length=1024, allow_blank=True)
    vmSize = StrictCharField(max_length=64)
    virtualMachineConfiguration = VirtualMachineConfigurationSerializer(required=False)
    cloudServiceConfiguration = CloudServiceConfigurationSerializer(required=False)
    resizeTimeout = DurationField(required=False)
    targetDedicatedNodes = StrictIntegerField(required=False, min_value=0)
    targetLowPriorityNodes = StrictIntegerField(required=False, min_value=0)
    enableAutoScale = _flag()
    autoScaleFormula = _text(allow_blank=True)  # its length: the autoscale rules
    autoScaleEvaluationInterval = DurationField(required=False)
    enableInterNodeCommunication = _flag()
    networkConfiguration = NetworkConfigurationSerializer(required=False)
    startTask = StartTaskSerializer(required=False)
    applicationPackageReferences = ApplicationPackageReferenceSerializer(many=True, required=False)
    taskSlotsPerNode = StrictIntegerField(required=False, min_value=1)  # its maximum: the vmSize's
    taskSchedulingPolicy = TaskSchedulingPolicySerializer(required=False)
    userAccounts = UserAccountSerializer(many=True, required=False)
    metadata = MetadataItemSerializer(many=True, required=False)
    mountConfiguration = MountConfigurationSerializer(many=True, required=False)
    upgradePolicy = UpgradePolicySerializer(required=False)
    # Only in api-versions before 2025-06-01: accepted and kept for those clients.
    certificateReferences = CertificateReferenceSerializer(many=True, required=False)
    applicationLicenses = _texts()
    targetNodeCommunicationMode = EnumField(["default", "classic", "simplified"], required=False)
    resourceTags = serializers.DictField(child=StrictCharField(allow_blank=True), required=False)


class PoolAddParameterSerializer(PoolSpecificationSerializer):
    """BatchPoolCreateOptions / PoolAddParameter: the body of Add Pool."""

    id = BatchIdField()


class AutoPoolSpecificationSerializer(WireSerializer):
    """BatchAutoPoolSpecification: poolInfo.autoPoolSpecification of Add Job."""

    autoPoolIdPrefix = _text(max_length=20, allow_blank=True)
    poolLifetimeOption = EnumField(["jobschedule", "job"])
    keepAlive = _flag()
    pool = PoolSpecificationSerializer(required=False)


class PoolPatchParameterSerializer(WireSerializer):
    """BatchPoolUpdateOptions / PoolPatchParameter: the body of Patch Pool (PATCH
    /pools/{poolId}). 14.x's schema has only the first five properties."""

    startTask = StartTaskSerializer(required=False)
    applicationPackageReferences = ApplicationPackageReferenceSerializer(many=True, required=False)
    metadata = MetadataItemSerializer(many=True, required=False)
    certificateReferences = CertificateReferenceSerializer(many=True, required=False)
    targetNodeCommunicationMode = EnumField(["default", "classic", "simplified"], required=False)
    displayName = _text(max_length=1024, allow_blank=True)
    vmSize = _text(max_length=64)
    enableInterNodeCommunication = _flag()
    virtualMachineConfiguration = VirtualMachineConfigurationSerializer(required=False)
    taskSlotsPerNode = StrictIntegerField(required=False, min_value=1)
    taskSchedulingPolicy = TaskSchedulingPolicySerializer(required=False)
    networkConfiguration = NetworkConfigurationSerializer(required=False)
    userAccounts = UserAccountSerializer(many=True, required=False)
    mountConfiguration = MountConfigurationSerializer(many=True, required=False)
    upgradePolicy = UpgradePolicySerializer(required=False)
    resourceTags = serializers.DictField(child=StrictCharField(allow_blank=True), required=False)


class PoolUpdatePropertiesParameterSerializer(WireSerializer):
    """BatchPoolReplaceOptions / PoolUpdatePropertiesParameter: the body of Update
    Properties (POST /pools/{poolId}/updateproperties). applicationPackageReferences and
    metadata are required by both schemas (an empty list removes them all)."""

    startTask = StartTaskSerializer(required=False)
    applicationPackageReferences = ApplicationPackageReferenceSerializer(many=True)
    metadata = MetadataItemSerializer(many=True)
    certificateReferences = CertificateReferenceSerializer(many=True, required=False)
    targetNodeCommunicationMode = EnumField(["default", "classic", "simplified"], required=False)


class PoolResizeParameterSerializer(WireSerializer):
    """BatchPoolResizeOptions / PoolResizeParameter."""

    targetDedicatedNodes = StrictIntegerField(required=False, min_value=0)
    targetLowPriorityNodes = StrictIntegerField(required=False, min_value=0)
    resizeTimeout = DurationField(required=False)
    nodeDeallocationOption = EnumField(NODE_DEALLOCATION_OPTIONS, required=False)


class NodeRemoveParameterSerializer(WireSerializer):
    """BatchNodeRemoveOptions / NodeRemoveParameter (at most 100 ids: the operation's rule)."""

    nodeList = serializers.ListField(child=StrictCharField())
    resizeTimeout = DurationField(required=False)
    nodeDeallocationOption = EnumField(NODE_DEALLOCATION_OPTIONS, required=False)


class PoolEnableAutoScaleParameterSerializer(WireSerializer):
    autoScaleFormula = _text(allow_blank=True)  # its length: the autoscale rules
    autoScaleEvaluationInterval = DurationField(required=False)


class PoolEvaluateAutoScaleParameterSerializer(WireSerializer):
    autoScaleFormula = StrictCharField(allow_blank=True)


# --- node bodies -------------------------------------------------------------------------


class NodeRebootParameterSerializer(WireSerializer):
    nodeRebootOption = EnumField(NODE_REBOOT_OPTIONS, required=False)


class NodeReimageParameterSerializer(WireSerializer):
    nodeReimageOption = EnumField(NODE_REIMAGE_OPTIONS, required=False)


class NodeDisableSchedulingParameterSerializer(WireSerializer):
    nodeDisableSchedulingOption = EnumField(NODE_DISABLE_SCHEDULING_OPTIONS, required=False)
