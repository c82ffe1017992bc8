"""The review core: accounts, sessions, claims and reviews, adjudication, statistics. No
Streamlit here; review_ui/ holds the page state and the pages that draw it."""
