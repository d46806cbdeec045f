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


def test_the_table_builders() -> None:
    assert netpolicy._nets("10.0.0.0/8", "::1/128") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    span = netpolicy._span("::2", "::ffff:ffff")
    assert span[0] == ipaddress.ip_network("::2/127") and span[-1] == ipaddress.ip_network("::8000:0/97")
    assert sum(net.num_addresses for net in span) == 2**32 - 2  # ::2 to ::ffff:ffff, nothing else
    assert netpolicy._span("10.0.0.0", "10.0.1.255") == (ipaddress.ip_network("10.0.0.0/23"),)
    assert all(net in netpolicy.NEVER for net in span)


def test_an_allowlisted_ipv6_form_of_a_mapped_address_counts() -> None:
    """An internal IPv4 address reached as ::ffff:a.b.c.d passes when either form is allowlisted."""
    policy, problems = parse_allow(["::ffff:10.0.0.0/104"])
    assert problems == []
    assert netpolicy.address_problem(policy, ip("::ffff:10.0.0.1")) is None
    assert (
        netpolicy.address_problem(policy, ip("10.0.0.1"))
        == "10.0.0.1 is an internal address and no allowed network holds it"
    )


def test_a_host_off_the_list_passes_when_its_addresses_are_allowlisted_in_either_form() -> None:
    v4, _ = parse_allow(["8.8.8.0/24"])
    assert netpolicy.destination_problem(v4, "dns.example", [ip("64:ff9b::808:808")]) is None  # NAT64 of 8.8.8.8
    v6, _ = parse_allow(["::ffff:8.8.8.0/120"])
    assert netpolicy.destination_problem(v6, "dns.example", [ip("::ffff:8.8.8.8")]) is None
    assert (
        netpolicy.destination_problem(v6, "dns.example", [ip("8.8.4.4")])
        == "dns.example is not on the outbound allowlist"
    )


def test_problem_messages() -> None:
    assert netpolicy.destination_problem(OPEN, "x.example", []) == "x.example resolved to no address"
    assert (
        netpolicy.address_problem(OPEN, ip("169.254.169.254")) == "169.254.169.254 is in a range that is never allowed"
    )
    assert netpolicy.address_problem(OPEN, ip("::ffff:169.254.169.254")) == (
        "::ffff:a9fe:a9fe is in a range that is never allowed"
    )


def test_a_wildcard_needs_a_label_before_its_suffix() -> None:
    policy, problems = parse_allow(["*.example.com", "*.a.org"])
    assert problems == []
    assert netpolicy.host_allowed(policy, "x.example.com")
    assert netpolicy.host_allowed(policy, "b.a.org")
    assert not netpolicy.host_allowed(policy, ".example.com")
    assert not netpolicy.host_allowed(policy, "example.com")


def test_host_names_are_matched_without_case_or_trailing_dot() -> None:
    policy, _ = parse_allow(["www.example.box"])
    assert netpolicy.host_allowed(policy, "WWW.Example.BOX.")
    assert not netpolicy.host_allowed(policy, "www.example.bo")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("X::1", None),
        ("api.example.com", None),
        (" 10.0.0.1", None),
    ],
)
def test_parse_address(text: str, address: str | None) -> None:
    parsed = netpolicy.parse_address(text)
    assert (None if parsed is None else str(parsed)) == address


def test_allow_entries_and_their_problems() -> None:
    policy, problems = parse_allow(
        [" [::1] ", "10.0.0.1/8", "bad entry!", "API.Example.com", "*.a.org", "0.0.0.0/0", "169.254.0.0/16", "::/0"]
    )
    assert policy.networks == (
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("169.254.0.0/16"),
        ipaddress.ip_network("::/0"),
    )
    assert policy.hosts == ("api.example.com", "*.a.org")
    assert problems == [
        "'10.0.0.1/8' is neither a host name, an IP address nor a CIDR network (a.b.c.d/n)",
        "'bad entry!' is neither a host name, an IP address nor a CIDR network (a.b.c.d/n)",
        "0.0.0.0/0 would allow every address; list the networks the gateway must reach",
        "169.254.0.0/16 is in a range that is never allowed (link-local, metadata, multicast...)",
        "::/0 would allow every address; list the networks the gateway must reach",
    ]


@pytest.mark.parametrize("entry", ["*.-bad.example", "*..example", "*.", "a/b.example", "*.a/8"])
def test_unusable_wildcards_and_slashes(entry: str) -> None:
    policy, problems = parse_allow([entry])
    assert policy.hosts == () and len(problems) == 1


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com", True),
        ("example.com.", True),
        (".example.com", False),
        ("a.X", False),  # callers lower-case first
        (".".join(["a" * 63] * 3 + ["a" * 61]), True),  # 253 characters
        (".".join(["a" * 63] * 3 + ["a" * 62]), False),  # 254
        ("a" * 64, False),
    ],
)
def test_valid_host_name(name: str, valid: bool) -> None:
    assert netpolicy.valid_host_name(name) is valid


@pytest.mark.parametrize(
    ("url", "allow_http", "problem"),
    [
        ("https://api.example.com/v1", False, None),
        ("http://api.example.com/", True, None),
        ("http://api.example.com/", False, "must be an https:// URL"),
        ("ftp://api.example.com/", False, "must be an https:// URL"),
        ("ftp://api.example.com/", True, "must be an http(s):// URL"),
        ("https://api.example.com:99999/", True, "is not a valid URL"),
        ("https://u:p@api.example.com/", True, "must not carry credentials (user:password@)"),
        ("https://u@api.example.com/", True, "must not carry credentials (user:password@)"),
        ("https:///path", True, "has no host"),
        ("https://bad_host.example/", True, "'bad_host.example' is not a valid host name"),
        (
            "https://other.example.com/",
            True,
            "host 'other.example.com' is not on the outbound allowlist ([outbound] allow)",
        ),
        ("https://10.9.9.9/", True, None),
        ("https://127.0.0.1/", True, "127.0.0.1 is an internal address and no allowed network holds it"),
    ],
)
def test_url_problem_messages(url: str, allow_http: bool, problem: str | None) -> None:
    policy, _ = parse_allow(["api.example.com", "10.0.0.0/8"])
    assert netpolicy.url_problem(policy, url, allow_http=allow_http) == problem
