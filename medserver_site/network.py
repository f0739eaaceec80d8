"""Which addresses MedServer answers on, for ALLOWED_HOSTS and the start banner."""

from __future__ import annotations

import ipaddress
import socket

import ifaddr

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
_WILDCARDS = ("0.0.0.0", "::", "")


def lan_addresses() -> list[str]:
    """Return this machine's IPv4 addresses other than loopback and link-local."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not ip.is_IPv4:
                continue
            address = ipaddress.ip_address(ip.ip)
            if address.is_loopback or address.is_link_local:
                continue
            found.append(str(address))
    return sorted(set(found))


def allowed_hosts_for(bind_host: str) -> list[str]:
    """Return the Host header values a browser may send to reach this server.

    A wildcard bind answers on every interface, so every local address and the
    machine's names are allowed; a specific bind allows that address (and
    loopback, for the admin at the machine itself).
    """
    hosts = list(LOOPBACK_HOSTS)
    names = {socket.gethostname(), socket.getfqdn()}
    if bind_host in _WILDCARDS:
        hosts += lan_addresses()
        hosts += sorted(n for n in names if n)
    else:
        hosts.append(f"[{bind_host}]" if ":" in bind_host else bind_host)
        hosts += sorted(n for n in names if n)
    return list(dict.fromkeys(hosts))


def urls_to_open(bind_host: str, port: int, *, https: bool = False) -> list[str]:
    """Return the URLs a clinician can type into a browser to reach the server."""
    if bind_host in _WILDCARDS:
        hosts = ["127.0.0.1", *lan_addresses()]
    else:
        hosts = [f"[{bind_host}]" if ":" in bind_host else bind_host]
    scheme = "https" if https else "http"
    return [f"{scheme}://{host}:{port}/" for host in hosts]
