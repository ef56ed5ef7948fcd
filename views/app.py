"""LPIPS Explorer: the Streamlit entry point (navigation only). The pages are the other modules
of this folder; numbers come from core/. Served by ``lpips-explorer app`` (``make run``), which
runs this file with the settings in ``.streamlit/config.toml`` beside it."""

import os
from pathlib import Path

# Read by PyTorch's OpenMP runtime when torch is first imported (below, by the pages). Streamlit
# runs every rerun on a new thread, each with its own OpenMP team; teams that spin while idle
# steal the cores the next rerun (and, on one machine, the browser) needs. Sleeping at once
# took a slider move's LPIPS card from 162 to 137 ms p50 (bench/app_loop.py, README).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

st.set_page_config(page_title="LPIPS Explorer", page_icon=":material/compare:", layout="wide")

from views import class_limits, style

# Before any page: the toolbar's "Clear cache" message must not empty the caches every student
# shares (docs/reliability-and-security.md, "What a hostile client can and cannot do").
class_limits.guard_clear_cache()
style.apply()
VIEWS = Path(__file__).parent
pages = [
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/tune:", default=True),
    st.Page(VIEWS / "sweep.py", title="Sweeps", icon=":material/show_chart:", url_path="sweeps"),
    st.Page(VIEWS / "synthesis.py", title="Synthesis", icon=":material/auto_fix_high:", url_path="synthesis"),
    st.Page(VIEWS / "quiz.py", title="Class quiz", icon=":material/how_to_vote:", url_path="quiz"),
]
st.navigation(pages).run()
