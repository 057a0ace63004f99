"""Which URLs a webhook may be sent to: no loopback, private, link-local or reserved address,
by literal or by name, unless the setting allows it (server-side request forgery)."""

from __future__ import annotations

import pytest

from server.domain.errors import InvalidInputError
from server.domain.webhook_urls import check_url, refusal

NAMES = {
    "crm.example.com": ["93.184.215.14"],
    "intranet.example.com": ["10.1.2.3"],
    "split.example.com": ["93.184.215.14", "192.168.1.9"],  # one private address is enough
    "v6.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "metadata.example.com": ["169.254.169.254"],
}


def resolver(host: str) -> list[str]:
    try:
        return NAMES[host]
    except KeyError:
        raise OSError("no such host") from None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:5432/", "private, loopback or reserved"),
        ("http://localhost.localdomain/", "does not resolve"),
        ("http://10.0.0.8/hook", "private, loopback or reserved"),
        ("http://172.16.5.4/hook", "private, loopback or reserved"),
        ("http://192.168.0.1/hook", "private, loopback or reserved"),
        ("http://169.254.169.254/latest/meta-data/", "private, loopback or reserved"),
        ("http://[::1]/hook", "private, loopback or reserved"),
        ("http://[fd00::1]/hook", "private, loopback or reserved"),
        ("http://[::ffff:127.0.0.1]/hook", "private, loopback or reserved"),
        ("http://0.0.0.0/hook", "private, loopback or reserved"),
        ("http://100.64.0.1/hook", "private, loopback or reserved"),  # carrier-grade NAT
        ("http://224.0.0.1/hook", "private, loopback or reserved"),
        ("https://intranet.example.com/hook", "10.1.2.3"),
        ("https://split.example.com/hook", "192.168.1.9"),
        ("https://metadata.example.com/", "169.254.169.254"),
        ("ftp://crm.example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("/relative/hook", "http:// or https://"),
        ("https://user:pw@crm.example.com/hook", "user name or password"),
        ("https://crm.example.com:99999/hook", "invalid port"),
    ],
)
def test_refused(url: str, why: str) -> None:
    problem = refusal(url, allow_private=False, resolver=resolver)
    assert problem is not None and why in problem
    with pytest.raises(InvalidInputError) as refused:
        check_url(url, allow_private=False, resolver=resolver)
    assert refused.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/hooks/vigor",
        "http://93.184.215.14:8080/hook",
        "https://v6.example.com/hook",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
    ],
)
def test_public_addresses_are_allowed(url: str) -> None:
    assert refusal(url, allow_private=False, resolver=resolver) is None


def test_the_setting_allows_private_addresses_but_not_other_schemes() -> None:
    assert refusal("http://127.0.0.1:9000/hook", allow_private=True, resolver=resolver) is None
    assert refusal("http://intranet.example.com/", allow_private=True, resolver=resolver) is None
    assert refusal("file:///etc/passwd", allow_private=True, resolver=resolver) is not None
