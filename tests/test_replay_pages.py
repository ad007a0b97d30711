"""Replays of a page going away and coming back, and of the failures that only look like it:
firewall blocks and a flaky 503 must never be reported as a disappearance."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Watcher
from tests.replay import AKAMAI_403, FOIA_PAGE, Replay, facilities_page, not_found_page, show_alerts
from tests.server import PageServer

# Autouse: prints each scenario's alerts (kind, check time, summary) under pytest -s.
__all__ = ["show_alerts"]

PATH = "/foia/library"
AT = [f"2025-03-{d:02d}T12:00:00+00:00" for d in range(10, 20)]


def gone_404(s: PageServer) -> None:
    s.set(PATH, b"<html><head><title>Page Not Found</title></head></html>", status=404)


def gone_410(s: PageServer) -> None:
    s.set(PATH, b"<html><head><title>Gone</title></head></html>", status=410)


def redirect_home(s: PageServer) -> None:
    s.redirect(PATH, "/", 301)
    s.set("/", FOIA_PAGE.replace("FOIA Library", "Home"))


def soft_404(s: PageServer) -> None:
    s.set(PATH, not_found_page())


GONE: dict[str, tuple[Callable[[PageServer], None], str]] = {
    "404": (gone_404, "The page answers 404 (Not Found)"),
    "410": (gone_410, "The page answers 410 (Gone)"),
    "redirect to /": (redirect_home, "The page redirects to the site's home page"),
    "200 Page Not Found": (soft_404, "The page says it is gone: 'Page Not Found | ICE'"),
}


@pytest.mark.parametrize("how", list(GONE))
def test_gone_page_fires_after_confirmation_and_recovers(
    how: str, server: PageServer, watcher: Watcher
) -> None:
    make_gone, summary = GONE[how]
    r = Replay(watcher, server)
    r.setup(PATH)
    server.set(PATH, FOIA_PAGE)
    assert r.check(AT[0]).code == 0
    make_gone(server)
    first = r.check(AT[1])
    (event,) = first.target["events"]
    assert (event["kind"], event["subject"]) == ("disappeared", "page")
    assert (
        event["summary"].startswith(summary) and "(unconfirmed: 1 of 2 checks)" in event["summary"]
    )
    assert (first.code, first.target["firing"]) == (0, [])
    second = r.check(AT[2])
    assert (second.code, second.target["firing"], second.target["state"]) == (
        1,
        ["disappeared"],
        "alert",
    )
    assert second.target["items"] == 25  # the listing is not "emptied" by a missing page
    assert r.check(AT[3]).code == 1
    server.remove("/")
    server.set(PATH, FOIA_PAGE)
    back = r.check(AT[4])
    assert back.code == 0 and back.kinds == ["recovered"]
    assert back.target["events"][0]["summary"] == "The page is back"
    assert [(k, at) for k, at, _ in r.timeline()] == [
        ("disappeared", AT[2]),
        ("recovered", AT[4]),
    ]
    assert r.check(AT[5]).kinds == []  # the good page is compared with the last good one


def test_akamai_block_for_five_checks_is_an_error_not_a_disappearance(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup(PATH)
    server.set(PATH, FOIA_PAGE)
    r.check(AT[0])
    server.set(PATH, AKAMAI_403, status=403)
    blocked = [r.check(at) for at in AT[1:6]]
    assert all(c.kinds == ["error"] for c in blocked)
    assert [c.code for c in blocked] == [0, 1, 1, 1, 1]
    last = blocked[-1].target["events"][0]["summary"]
    assert last.startswith(
        "Blocked by a firewall for 5 checks since 2025-03-11 12:00 UTC (4 days): "
        'Akamai "Access Denied"'
    )
    server.set(PATH, FOIA_PAGE)
    back = r.check(AT[6])
    assert back.kinds == ["recovered"] and back.code == 0
    assert [k for k, _, _ in r.timeline()] == ["error", "recovered"]


def test_a_single_flaky_503_between_good_checks_fires_nothing(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup(PATH)
    server.set(PATH, FOIA_PAGE)
    r.check(AT[0])
    server.set(PATH, b"<html><title>Service Unavailable</title></html>", status=503)
    flaky = r.check(AT[1])
    assert flaky.kinds == ["error"] and flaky.code == 0
    assert "Answering HTTP 503" in flaky.target["events"][0]["summary"]
    server.set(PATH, FOIA_PAGE)
    assert [r.check(at).kinds for at in AT[2:4]] == [[], []]
    assert r.alerts() == [] and r.recovered() == []
    assert all(c.code == 0 for c in r.checks)


def test_redirects_that_keep_the_page_are_not_disappearances(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup(PATH)
    server.set(PATH, FOIA_PAGE)
    r.check(AT[0])
    server.redirect(PATH, PATH + "/", 301)  # trailing slash
    server.set(PATH + "/", FOIA_PAGE)
    assert r.check(AT[1]).kinds == [] and r.check(AT[2]).code == 0
    server.redirect(PATH, "/about", 302)  # an unrelated path
    server.set("/about", FOIA_PAGE.replace("FOIA Library", "About ICE"))
    away = r.check(AT[3])
    assert away.kinds == ["disappeared"]
    assert away.target["events"][0]["summary"].startswith("The page redirects to an unrelated page")


def test_a_page_never_read_is_an_error_not_a_disappearance(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup("/typo")
    c = r.check(AT[0])
    assert c.kinds == ["error"]
    assert "never been read" in c.target["events"][0]["summary"]


def test_a_host_name_that_stops_resolving_is_a_disappearance(
    server: PageServer, watcher: Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    resolves = {"www.agency.example.gov": True}

    def fake(host: object, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in resolves:
            if not resolves[str(name)]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = server.host
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    server.set(PATH, FOIA_PAGE)
    watcher.write(f"  - id: page\n    url: http://www.agency.example.gov:{server.port}{PATH}\n")
    r = Replay(watcher, server)
    assert r.check(AT[0]).target["items"] == 25
    resolves["www.agency.example.gov"] = False
    first = r.check(AT[1])
    assert first.kinds == ["disappeared"] and first.target["error"]["class"] == "dns"
    assert first.target["events"][0]["summary"].startswith(
        "www.agency.example.gov no longer resolves (DNS)"
    )
    assert r.check(AT[2]).target["firing"] == ["disappeared"]
    resolves["www.agency.example.gov"] = True
    assert r.check(AT[3]).kinds == ["recovered"]


def test_a_table_losing_rows_shrinks_once_confirmed_and_a_one_check_dip_does_not(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup("/facilities")
    server.set("/facilities", facilities_page(201))
    r.check(AT[0])
    server.set("/facilities", facilities_page(172))
    assert r.check(AT[1]).kinds == ["changed", "shrank"]
    server.set("/facilities", facilities_page(201))  # a half-built page, once
    assert r.check(AT[2]).kinds == ["changed"]
    server.set("/facilities", facilities_page(172))
    r.check(AT[3])
    fired = r.check(AT[4])
    assert fired.code == 1 and fired.target["firing"] == ["shrank"]
    (event,) = fired.events("shrank")
    assert event["summary"].startswith("Table 'Detention facilities' lost 29 of 201 rows (14%)")
    server.set("/facilities", facilities_page(201))
    back = r.check(AT[5])
    assert back.kinds == ["changed", "recovered"] and back.code == 0
    assert [(k, at) for k, at, _ in r.timeline()] == [("shrank", AT[4]), ("recovered", AT[5])]


def test_when_no_watched_host_resolves_it_is_our_network_not_a_disappearance(
    server: PageServer, watcher: Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An offline newsroom server: every name fails the same way a deleted record would.
    real = socket.getaddrinfo
    online = {"on": True}
    names = {"www.agency.example.gov", "www.other.example.gov"}

    def fake(host: object, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in names:
            if not online["on"]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = server.host
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    server.set(PATH, FOIA_PAGE)
    watcher.write(
        f"  - id: page\n    url: http://www.agency.example.gov:{server.port}{PATH}\n"
        f"  - id: other\n    url: http://www.other.example.gov:{server.port}{PATH}\n"
    )
    r = Replay(watcher, server)
    r.check(AT[0])
    online["on"] = False
    for at in AT[1:4]:
        check = r.check(at)
        assert check.kinds == ["error"], check.kinds
        assert "this machine's DNS or network is down" in check.target["events"][0]["summary"]
    assert check.target["firing"] == ["error"]  # after confirmation: an error, never gone
