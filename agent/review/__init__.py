"""The review queue's logic: accounts, claims and reviews, adjudication, progress figures.
The Streamlit app in review_ui/ only draws what these functions return."""
