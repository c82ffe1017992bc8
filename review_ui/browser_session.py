"""The session token in a browser cookie, so a reload (F5) or a link opened in a new tab keeps
the reviewer signed in. Streamlit can read cookies (st.context.cookies, as sent when the page
connected) but has no call to set one, so a short script in the page sets or deletes it. The
cookie holds only the token; the log decides whether it is still good (agent/review/sessions.py).
"""

import json

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from labelagent.review.sessions import SESSION_LIFETIME
from labelagent.review_ui import page_state

WRITTEN = "session_cookie_written"


def cookie_name() -> str:
    """One cookie per port: cookies are shared by every port of a host, and two review apps on
    one machine must not sign each other's reviewers out."""
    return f"labelagent_session_{st.get_option('server.port')}"


def token() -> str | None:
    """The token the browser sent when this page connected (AppTest has no browser: None)."""
    value = st.context.cookies.get(cookie_name())
    return value if isinstance(value, str) else None


def client() -> str:
    """Who failed sign-ins are counted against: the connection's IP address ('local' for this
    machine). Behind a reverse proxy on the same machine, the server takes it from the
    X-Forwarded-For header the proxy sets."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def _write_cookie(value: str, max_age: int, where: DeltaGenerator) -> None:
    secure = '(location.protocol === "https:" ? "; Secure" : "")'
    script = (
        f"document.cookie = {json.dumps(cookie_name())} + '=' + {json.dumps(value)}"
        f" + '; Path=/; Max-Age={max_age}; SameSite=Strict' + {secure};"
    )
    where.html(f"<script>{script}</script>", unsafe_allow_javascript=True, width="content")


def sync() -> None:
    """Keep the browser's cookie in step with the session: set it after a sign-in, delete it
    after a sign-out or when the session ended. The script goes where its empty element shifts
    nothing: the sidebar when signed in, the top of the sign-in page otherwise."""
    state = st.session_state
    mine = state.get(page_state.TOKEN)
    if mine and mine != token():
        _write_cookie(mine, int(SESSION_LIFETIME.total_seconds()), st.sidebar)
        state[WRITTEN] = True
    elif not mine and (token() or state.get(WRITTEN)):
        _write_cookie("", 0, st.container())
        state.pop(WRITTEN, None)
