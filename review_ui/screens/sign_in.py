"""Sign-in: name and password, checked against the reviewer accounts in the database."""

import streamlit as st

from labelagent.review.accounts import count_reviewers
from labelagent.review_ui import browser_session, page_state, views

db = views.db_path()
state = st.session_state
st.title("labelagent review")
if count_reviewers(db) == 0:
    st.info(
        "This database has no reviewer accounts yet, so nobody can sign in. Create one in a "
        f"terminal:\n\n```\nlabelagent reviewer add NAME --db {db}\n```\n\n"
        "Add `--role adjudicator` for someone who also settles disagreements."
    )


def _submit() -> None:
    page_state.sign_in(
        state,
        db,
        state.get("sign-in-name", ""),
        state.get("sign-in-password", ""),
        browser_session.client(),
    )
    state["sign-in-password"] = ""


with st.form("sign-in"):
    st.text_input("Reviewer", key="sign-in-name", autocomplete="username", max_chars=100)
    st.text_input("Password", type="password", key="sign-in-password")
    st.form_submit_button("Sign in", type="primary", on_click=_submit)
if state.get(page_state.FLASH):
    st.error(state.pop(page_state.FLASH))
