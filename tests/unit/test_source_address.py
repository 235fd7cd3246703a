"""lookup source_address: the control node's address as a fleet machine's firewall sees it."""

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.locustfleet.triton.plugins.lookup.source_address import kernel_route, source_for


def test_the_kernel_route_to_loopback_is_loopback():
    assert kernel_route("127.0.0.1") == "127.0.0.1"
    assert source_for("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize("destination, source", [
    ("10.213.0.5", "10.213.0.1"),          # a private network (tritonsim's bridge, a VPN): as seen
    ("203.0.113.9", "198.51.100.7"),       # documentation ranges: not "global" to ipaddress either
])
def test_source_seen_by_the_destination(destination, source):
    assert source_for(destination, route=lambda dest: source) == source


def test_private_source_towards_a_public_machine_means_nat():
    with pytest.raises(AnsibleLookupError, match=r"reaches 8\.8\.8\.8 from 192\.168\.1\.20, a private address.*"
                                                 r"-e firewall_ssh_from=ADDRESS"):
        source_for("8.8.8.8", route=lambda dest: "192.168.1.20")


def test_public_source_towards_a_public_machine():
    assert source_for("8.8.8.8", route=lambda dest: "1.1.1.1") == "1.1.1.1"


@pytest.mark.parametrize("bad", ["", "example.com", "10.0.0.300", "::1", None])
def test_not_an_ipv4_address(bad):
    with pytest.raises(AnsibleLookupError, match="is not an IPv4 address"):
        source_for(bad, route=lambda dest: "127.0.0.1")


def test_no_route():
    def unreachable(dest):
        raise OSError(101, "Network is unreachable")

    with pytest.raises(AnsibleLookupError, match="no route from this control node to 10.9.9.9 .Network is unreachable."):
        source_for("10.9.9.9", route=unreachable)
