"""The outbound address policy (S1, S2, S8, S9) over an explicit table of addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import netpolicy
from gateway.core.netpolicy import OutboundPolicy, parse_allow

OPEN = OutboundPolicy()

# Refused with no allowlist (S2); each is allowed once the network holding it is allowlisted.
INTERNAL = [
    ("127.0.0.1", "127.0.0.0/8"),
    ("127.9.9.9", "127.0.0.0/8"),
    ("::1", "::1/128"),
    ("::ffff:127.0.0.1", "127.0.0.1/32"),
    ("10.1.2.3", "10.0.0.0/8"),
    ("172.16.0.1", "172.16.0.0/12"),
    ("172.31.255.254", "172.16.0.0/12"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("100.64.0.1", "100.64.0.0/10"),
    ("198.18.0.1", "198.18.0.0/15"),
    ("192.0.2.10", "192.0.2.0/24"),
    ("fc00::1", "fc00::/7"),
    ("fd12:3456::1", "fd00::/8"),
    ("::ffff:10.0.0.1", "10.0.0.0/8"),
    ("64:ff9b::7f00:1", "127.0.0.0/8"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", "10.0.0.0/8"),  # NAT64 of 10.0.0.1
    ("2002:c0a8:101::1", "192.168.0.0/16"),  # 6to4 of 192.168.1.1
]

# Refused even when allowlisted networks would hold them.
NEVER = [
    "169.254.169.254",
    "169.254.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "fd00:ec2::254",
    "100.100.100.200",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::7f00:1",  # IPv4-compatible form of 127.0.0.1
    "fe80::1",
    "ff02::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b:1::a00:1",
]

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "172.32.0.1"]


def ip(text: str) -> netpolicy.IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(("address", "network"), INTERNAL)
def test_internal_addresses_need_their_network_allowlisted(address: str, network: str) -> None:
    assert netpolicy.address_problem(OPEN, ip(address)) is not None
    other, _ = parse_allow(["203.0.113.0/24" if network != "192.0.2.0/24" else "10.0.0.0/8", "hooks.example.com"])
    assert netpolicy.address_problem(other, ip(address)) is not None
    allowed, problems = parse_allow([network])
    assert problems == []
    assert netpolicy.address_problem(allowed, ip(address)) is None


@pytest.mark.parametrize("address", NEVER)
def test_never_ranges_are_refused_even_when_allowlisted(address: str) -> None:
    everything, _ = parse_allow(["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3", "2000::/3", "::ffff:0:0/96"])
    assert netpolicy.address_problem(OPEN, ip(address)) is not None
    assert netpolicy.address_problem(everything, ip(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_the_blocklist(address: str) -> None:
    assert netpolicy.address_problem(OPEN, ip(address)) is None


def test_allow_entries_that_overlap_never_ranges_are_refused() -> None:
    _, problems = parse_allow(["169.254.0.0/16", "0.0.0.0/0", "10.0.0.0/8"])
    assert len(problems) == 2


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "not a host", "http://x.example", "-bad.example", "a..b"])
def test_unusable_allow_entries(entry: str) -> None:
    _, problems = parse_allow([entry])
    assert problems


def test_every_resolved_address_must_pass() -> None:
    policy, _ = parse_allow(["sink.example.com"])
    public, private = ip("93.184.216.34"), ip("10.0.0.5")
    assert netpolicy.destination_problem(policy, "sink.example.com", [public]) is None
    assert netpolicy.destination_problem(policy, "sink.example.com", [public, private]) is not None
    assert netpolicy.destination_problem(policy, "sink.example.com", [private, public]) is not None
    assert netpolicy.destination_problem(policy, "sink.example.com", []) is not None


def test_allowlist_gates_host_names() -> None:
    policy, _ = parse_allow(["*.hooks.example.com", "api.example.com", "10.0.0.0/8"])
    public = [ip("93.184.216.34")]
    assert netpolicy.destination_problem(policy, "a.hooks.example.com", public) is None
    assert netpolicy.destination_problem(policy, "API.example.com.", public) is None
    assert netpolicy.destination_problem(policy, "hooks.example.com", public) is not None
    assert netpolicy.destination_problem(policy, "evilhooks.example.com", public) is not None
    assert netpolicy.destination_problem(policy, "other.example.org", public) is not None
    # a name off the host list is allowed when every address is in an allowlisted network
    assert netpolicy.destination_problem(policy, "db.corp", [ip("10.2.3.4")]) is None
    assert netpolicy.destination_problem(policy, "db.corp", [ip("10.2.3.4"), *public]) is not None


def test_an_empty_allowlist_allows_public_hosts_only() -> None:
    assert netpolicy.destination_problem(OPEN, "anything.example", [ip("8.8.8.8")]) is None
    assert netpolicy.destination_problem(OPEN, "anything.example", [ip("127.0.0.1")]) is not None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.example.com/v1", True),
        ("https://user:pw@api.example.com/", False),  # S9
        ("https://token@api.example.com/", False),
        ("ftp://api.example.com/", False),
        ("https://other.example.com/", False),  # S1: off the allowlist
        ("https://10.1.1.1:8443/", True),
        ("https://169.254.169.254/latest/meta-data/", False),
        ("https://[::1]:9000/", False),
        ("https://api.example.com:99999/", False),
    ],
)
def test_configured_urls_are_checked_at_load(url: str, ok: bool) -> None:
    policy, _ = parse_allow(["api.example.com", "10.0.0.0/8"])
    assert (netpolicy.url_problem(policy, url) is None) is ok


def test_plain_http_can_be_refused() -> None:
    assert netpolicy.url_problem(OPEN, "http://api.example.com/", allow_http=False) is not None
    assert netpolicy.url_problem(OPEN, "http://api.example.com/") is None


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))


@settings(max_examples=500, deadline=None)
@given(address=addresses)
def test_any_address_is_judged_without_error(address: netpolicy.IPAddress) -> None:
    problem = netpolicy.address_problem(OPEN, address)
    inner = netpolicy.effective(address)
    if problem is None:
        assert not any(inner in net for net in (*netpolicy.NEVER, *netpolicy.INTERNAL))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_any_url_text_is_judged_without_error(text: str) -> None:
    netpolicy.url_problem(OPEN, text)
    netpolicy.url_problem(OPEN, "https://" + text)
    parse_allow([text])
