"""The review queue. `labelagent review --db PATH` runs
`streamlit run review_ui/app.py -- --db PATH`.

The database comes from `--db` after `--`, else from the LABELAGENT_DB environment variable. Only
the sign-in page exists until a reviewer signs in; the adjudication page exists only for
adjudicators. See review_ui/README.md.
"""

import os
import sys
from pathlib import Path

import streamlit as st

from agent.review import hold, ui_logic
from review_ui import views

st.set_option("client.toolbarMode", "minimal")  # no Deploy button or developer menu for reviewers
st.set_page_config(page_title="labelagent review", page_icon=":material/checklist:", layout="wide")

if not st.session_state.get(views.DB_KEY):
    st.session_state[views.DB_KEY] = ui_logic.resolve_db(sys.argv[1:], os.environ)
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

reviewer = ui_logic.signed_in(st.session_state)
if reviewer is None:
    pages = [st.Page("screens/sign_in.py", title="Sign in", url_path="sign-in", default=True)]
else:
    pages = [
        st.Page("screens/queue.py", title="Review queue", url_path="queue", default=True),
        st.Page("screens/dashboard.py", title="Dashboard", url_path="dashboard"),
        st.Page("screens/report.py", title="Report", url_path="report"),
    ]
    if reviewer.can_adjudicate:
        pages.insert(
            1, st.Page("screens/adjudication.py", title="Adjudication", url_path="adjudication")
        )
    views.account_sidebar(db, reviewer)
    views.keys_everywhere()
st.navigation(pages).run()
