"""LPIPS Explorer: the Streamlit entry point. Pages live in views/; numbers come from core/."""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="LPIPS Explorer", page_icon=":material/compare:", layout="wide")

from views import style

style.apply()
VIEWS = Path(__file__).parent / "views"
pages = [
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/tune:", default=True),
    st.Page(VIEWS / "sweep.py", title="Sweeps", icon=":material/show_chart:", url_path="sweeps"),
    st.Page(VIEWS / "synthesis.py", title="Synthesis", icon=":material/auto_fix_high:", url_path="synthesis"),
    st.Page(VIEWS / "quiz.py", title="Class quiz", icon=":material/how_to_vote:", url_path="quiz"),
]
st.navigation(pages).run()
