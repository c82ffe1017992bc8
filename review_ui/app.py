"""The review queue. `labelagent review --db PATH` runs
`streamlit run review_ui/app.py -- --db PATH`.

The database comes from `--db` after `--`, else from the LABELAGENT_DB environment variable.
Every page has its address (/queue, /dashboard, ...); until a reviewer signs in, each leads to
the sign-in page and, once signed in, on to the page asked for. The adjudication page is only
for adjudicators. See review_ui/README.md.
"""

import os
import sys
from pathlib import Path

import streamlit as st

from labelagent.review_ui import browser_session, hold, keys, page_state, views

st.set_option("client.toolbarMode", "minimal")  # no Deploy button or developer menu for reviewers
st.set_page_config(page_title="labelagent review", page_icon=":material/checklist:", layout="wide")

if not st.session_state.get(views.DB_KEY):
    st.session_state[views.DB_KEY] = page_state.resolve_db(sys.argv[1:], os.environ)
db = st.session_state[views.DB_KEY]
hold.remember(st.session_state, sys.argv[1:])
if not db or not Path(db).is_file():
    st.error(
        f"No database at {db!r}. Start the app with `labelagent review --db PATH`."
        if db
        else "No database given. Start the app with `labelagent review --db PATH`."
    )
    st.stop()
views.ensure_schema(db)


def _root() -> None:
    """The app's root address; app.py sends every visit on to the queue or the sign-in page, so
    that /queue is the queue's own address (a default page answers only at the root)."""


reviewer = page_state.check_session(st.session_state, db, browser_session.token())
browser_session.sync()
pages = {
    page_state.SIGN_IN_PAGE: st.Page(
        "screens/sign_in.py",
        title="Sign in",
        url_path=page_state.SIGN_IN_PAGE,
        visibility="hidden" if reviewer else "visible",
    ),
    "": st.Page(_root, title="labelagent review", default=True, visibility="hidden"),
    "queue": st.Page("screens/queue.py", title="Review queue", url_path="queue"),
    "adjudication": st.Page(
        "screens/adjudication.py",
        title="Adjudication",
        url_path="adjudication",
        visibility="visible" if reviewer and reviewer.can_adjudicate else "hidden",
    ),
    "dashboard": st.Page("screens/dashboard.py", title="Dashboard", url_path="dashboard"),
    "report": st.Page("screens/report.py", title="Report", url_path="report"),
}
page = st.navigation(list(pages.values()), position="sidebar" if reviewer else "hidden")
requested = next(name for name, known in pages.items() if known is page)
detour = page_state.redirect(requested, reviewer, st.query_params.get("next"))
if detour:
    target, then = detour
    st.switch_page(pages[target], query_params={"next": then} if then else None)
if reviewer is not None:
    views.account_sidebar(db, reviewer)
    keys.install()
page.run()
