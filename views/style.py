"""A little CSS for a denser page (our own static text, no user input)."""

import streamlit as st

CSS = """
<style>
.block-container {padding-top: 2.2rem; padding-bottom: 2rem;}
[data-testid="stMetricValue"] {font-size: 1.9rem;}
</style>
"""


def apply() -> None:
    st.html(CSS)
