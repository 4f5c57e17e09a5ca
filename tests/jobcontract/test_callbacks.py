"""Callback URLs: only global addresses, whatever form they are written in."""

import socket

import pytest

from jobcontract.callbacks import CallbackRefused, check_callback_url, redacted_url, resolve_callback

REFUSED = [
    "http://127.0.0.1/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/",
    "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b:1::a9fe:a9fe]/",  # NAT64
    "http://[2002:7f00:1::1]/", "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[::127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/",  # compatible, mapped
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[fec0::1]/", "http://[fd00::1]/", "http://[fe80::1]/",  # site-local, unique-local, link-local
]
MALFORMED = ["http://example.com:99999/", "http://[::1", "http://a:b@example.com:abc/", "ftp://example.com/",
             "http:///nohost", "http://exa mple.com/", "javascript:alert(1)"]


@pytest.mark.parametrize("url", REFUSED)
def test_addresses_that_are_not_global_are_refused_in_every_form(url):
    with pytest.raises(CallbackRefused):
        check_callback_url(url, allow_private=False)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused_not_crashed_on(url):
    with pytest.raises(CallbackRefused):
        check_callback_url(url, allow_private=True)


def test_global_addresses_pass_in_either_family():
    for url in ("http://8.8.8.8/hook", "https://[2001:4860:4860::8888]:8443/hook", "http://[64:ff9b::808:808]/"):
        target = resolve_callback(url, allow_private=False)
        assert str(target.address) in url or target.address.version == 6


def test_a_name_is_checked_on_every_address_it_has(monkeypatch):
    real = socket.getaddrinfo

    def two_addresses(host, *args, **kwargs):
        if host == "mixed.example":
            return real("8.8.8.8", *args, **kwargs) + real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    with pytest.raises(CallbackRefused, match="127.0.0.1"):
        check_callback_url("http://mixed.example/hook", allow_private=False)


def test_credentials_are_redacted_from_what_is_shown():
    assert redacted_url("https://user:secret@hooks.example.com/x?y=1") == "https://***@hooks.example.com/x?y=1"
    assert redacted_url("https://hooks.example.com/x") == "https://hooks.example.com/x"
