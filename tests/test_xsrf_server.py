"""Cross-site requests against a real dashboard on 127.0.0.1 (issue 13): uploads and the websocket.

What Streamlit 1.67 does, read in its source (streamlit/web/server/starlette/):
- uploads (PUT /_stcore/upload_file/...) need the X-Xsrftoken header to match the
  _streamlit_xsrf cookie, else 403, before the session is even looked at;
- the websocket carries no XSRF check of its own (the token it may send in its
  subprotocol only gates reading an auth cookie, which this app does not use); what
  stops another site's page from driving a session (cross-site websocket hijacking) is
  the Origin check before the handshake is accepted: an Origin whose host is not the
  server's, localhost or this machine's addresses is refused with close code 1008, which
  a client sees as HTTP 403. A browser always sends Origin; a client without one (not a
  browser, so not a forged request from a visited page) is let in.
One server start (a few seconds) serves every test here.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from browser import serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.slow  # starts a real server


@pytest.fixture(scope="module")
def server(synthetic_dir, tmp_path_factory):
    env = {"MNIST_DIR": str(synthetic_dir), "MNIST_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    with serve(env) as running:
        yield running


def websocket(server, origin: str | None):
    url = server.url.replace("http://", "ws://") + "/_stcore/stream"
    return connect(url, origin=origin, subprotocols=["streamlit"], open_timeout=5)


def test_the_websocket_refuses_another_sites_page(server):
    with pytest.raises(InvalidStatus) as refused:
        websocket(server, "https://evil.example").close()
    assert refused.value.response.status_code == 403


def test_the_websocket_accepts_the_dashboards_own_page(server):
    with websocket(server, server.url) as ws:
        assert ws.subprotocol == "streamlit"


def xsrf_cookie(server) -> str:
    with urllib.request.urlopen(server.url + "/_stcore/health", timeout=5) as response:
        cookies = response.headers.get_all("Set-Cookie") or []
    found = [c.split(";")[0].split("=", 1)[1] for c in cookies if c.startswith("_streamlit_xsrf=")]
    assert found, cookies
    return found[0]


def upload(server, headers: dict) -> int:
    request = urllib.request.Request(
        server.url + "/_stcore/upload_file/no-such-session/file-1", data=b"--x--", method="PUT", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_upload_without_the_xsrf_token_is_refused(server):
    cookie = xsrf_cookie(server)
    assert upload(server, {}) == 403  # what another site's form would send: no token
    assert upload(server, {"Cookie": f"_streamlit_xsrf={cookie}"}) == 403  # the cookie alone is not enough
    assert upload(server, {"Cookie": f"_streamlit_xsrf={cookie}", "X-Xsrftoken": "2|00|00|00"}) == 403
    # The control: with the token the page itself sends, the request passes the XSRF check
    # and fails only on the made-up session (400), so the 403s above are the XSRF check.
    assert upload(server, {"Cookie": f"_streamlit_xsrf={cookie}", "X-Xsrftoken": cookie}) == 400
