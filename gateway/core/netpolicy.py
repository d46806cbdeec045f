"""Where the gateway may connect (S1, S2, S8, S9). Pure: addresses are resolved by the caller.

Two layers. The allowlist from ``[outbound] allow`` holds host names (``api.example.com``, ``*.example.com``)
and networks (``10.0.0.0/8``, ``127.0.0.1``). The blocklist is always on: ``NEVER`` ranges (link-local,
cloud metadata, unspecified, multicast, reserved) are refused even when allowlisted; ``INTERNAL`` ranges
(loopback, private, shared, benchmark, documentation) are refused unless an allowlisted network holds the
address. IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the IPv4 address they carry.

An empty allowlist allows any host whose addresses pass the blocklist; a non-empty one also requires the
host to be allowlisted by name, or every address it resolves to to lie in an allowlisted network.
The tables are explicit on purpose: ``ipaddress.is_private`` and friends have changed across releases.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPv4Network = ipaddress.IPv4Network
IPv6Network = ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = IPv4Network | IPv6Network


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def _span(first: str, last: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.summarize_address_range(ipaddress.ip_address(first), ipaddress.ip_address(last)))


NEVER: tuple[IPNetwork, ...] = _span("::2", "::ffff:ffff") + _nets(
    "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
    "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (AWS, GCP, Azure, OCI metadata)
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "192.0.0.192/32",  # Oracle Cloud metadata (legacy)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, incl. 255.255.255.255 broadcast
    "::/128",  # unspecified (::2 to ::255.255.255.255, IPv4-compatible and deprecated, come first)
    "100::/64",  # discard-only
    "2001::/32",  # Teredo: carries an obfuscated IPv4 address
    "2001:10::/28",  # ORCHID
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",  # multicast
    "64:ff9b:1::/48",  # local-use NAT64: the embedded address cannot be judged
)

INTERNAL: tuple[IPNetwork, ...] = _nets(
    "127.0.0.0/8",  # loopback
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation
    "203.0.113.0/24",  # documentation
    "::1/128",  # loopback
    "fc00::/7",  # unique local
    "2001:db8::/32",  # documentation
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPolicy:
    hosts: tuple[str, ...] = ()  # lower-case names; "*.example.com" matches any subdomain
    networks: tuple[IPNetwork, ...] = ()

    @property
    def open(self) -> bool:
        """True when no allowlist is set: any host with public addresses may be called."""
        return not self.hosts and not self.networks


def parse_allow(entries: Iterable[str]) -> tuple[OutboundPolicy, list[str]]:
    """Build a policy from ``allow`` entries; the list holds a message for each entry it could not use."""
    hosts: list[str] = []
    networks: list[IPNetwork] = []
    problems: list[str] = []
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text.strip("[]")))  # strict: no host bits (10.0.0.1/8 is refused)
            continue
        except ValueError:
            pass
        name = text[2:] if text.startswith("*.") else text
        if not valid_host_name(name):  # a "/" (a URL, a bad CIDR) fails the label pattern too
            problems.append(f"{entry!r} is neither a host name, an IP address nor a CIDR network (a.b.c.d/n)")
            continue
        hosts.append(text)
    for net in networks:
        if net.prefixlen == 0:
            problems.append(f"{net} would allow every address; list the networks the gateway must reach")
        elif any(net.version == never.version and net.subnet_of(never) for never in NEVER):  # type: ignore[arg-type]
            problems.append(f"{net} is in a range that is never allowed (link-local, metadata, multicast...)")
    return OutboundPolicy(hosts=tuple(hosts), networks=tuple(networks)), problems


def valid_host_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def effective(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64 64:ff9b::/96, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_problem(policy: OutboundPolicy, address: IPAddress) -> str | None:
    """Why the gateway may not connect to ``address``, or None when it may."""
    inner = effective(address)
    for candidate in {address, inner}:
        if any(candidate in net for net in NEVER):
            return f"{address} is in a range that is never allowed"
    if any(inner in net for net in INTERNAL) and not _in_networks(policy, inner, address):
        return f"{address} is an internal address and no allowed network holds it"
    return None


def destination_problem(policy: OutboundPolicy, host: str, addresses: Sequence[IPAddress]) -> str | None:
    """Why ``host`` (resolved to ``addresses``) may not be called, or None. Every address must pass."""
    if not addresses:
        return f"{host} resolved to no address"
    for address in addresses:
        problem = address_problem(policy, address)
        if problem:
            return problem
    if policy.open or host_allowed(policy, host):
        return None
    if all(_in_networks(policy, effective(a), a) for a in addresses):
        return None
    return f"{host} is not on the outbound allowlist"


def host_allowed(policy: OutboundPolicy, host: str) -> bool:
    name = host.lower().rstrip(".")
    for entry in policy.hosts:
        if entry.startswith("*.") and name.endswith(entry[1:]) and len(name) > len(entry) - 1:
            return True
        if name == entry:
            return True
    return False


def url_problem(policy: OutboundPolicy, url: str, *, allow_http: bool = True) -> str | None:
    """Static check of a configured URL: scheme, no credentials, and a host the allowlist can reach.

    A host given as an IP address is judged now; a host name must be allowlisted by name (when there is an
    allowlist) and its addresses are judged again at connect time.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or (parts.scheme == "http" and not allow_http):
        return "must be an https:// URL" if not allow_http else "must be an http(s):// URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    host = (parts.hostname or "").lower()
    if not host:
        return "has no host"
    literal = parse_address(host)
    if literal is not None:
        return destination_problem(policy, host, [literal])
    if not valid_host_name(host):
        return f"{host!r} is not a valid host name"
    if not policy.open and not host_allowed(policy, host):
        return f"host {host!r} is not on the outbound allowlist ([outbound] allow)"
    return None


def parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None


def _in_networks(policy: OutboundPolicy, *candidates: IPAddress) -> bool:
    return any(candidate in net for net in policy.networks for candidate in candidates)
