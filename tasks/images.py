"""The virtual machine images List Supported Images answers with.

A batchsite node is a node agent on a Linux machine (this one, or a Slurm node), whatever
image a pool names: every task runs there. So the images listed are the Linux images Azure
Batch verifies for its current node agents, each with the nodeAgentSKUId Batch pairs with
it; a pool may name any of them (or another marketplace image: Add Pool refuses only
custom images, which batchsite cannot resolve).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SupportedImage:
    publisher: str
    offer: str
    sku: str
    node_agent_sku_id: str
    os_type: str = "linux"
    verification_type: str = "verified"

    def wire(self) -> dict:
        """BatchSupportedImage / ImageInformation."""
        return {
            "nodeAgentSKUId": self.node_agent_sku_id,
            "imageReference": {
                "publisher": self.publisher,
                "offer": self.offer,
                "sku": self.sku,
                "version": "latest",
            },
            "osType": self.os_type,
            "verificationType": self.verification_type,
        }


SUPPORTED_IMAGES = (
    SupportedImage(
        "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04"
    ),
    SupportedImage(
        "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "batch.node.ubuntu 22.04"
    ),
    SupportedImage("canonical", "ubuntu-24_04-lts", "server", "batch.node.ubuntu 24.04"),
    SupportedImage(
        "canonical", "0001-com-ubuntu-server-focal", "20_04-lts", "batch.node.ubuntu 20.04"
    ),
    SupportedImage("debian", "debian-12", "12", "batch.node.debian 12"),
    SupportedImage("debian", "debian-11", "11", "batch.node.debian 11"),
    SupportedImage("almalinux", "almalinux-x86_64", "9-gen2", "batch.node.el 9"),
    SupportedImage("resf", "rockylinux-x86_64", "9-base", "batch.node.el 9"),
    SupportedImage("microsoft-dsvm", "ubuntu-hpc", "2204", "batch.node.ubuntu 22.04"),
)
