"""A little CSS for a denser page (our own static text, no user input)."""

import streamlit as st

CSS = """
<style>
.block-container {padding-top: 1.2rem; padding-bottom: 2rem; padding-left: 1.5rem; padding-right: 1.5rem;}
[data-testid="stMetricValue"] {font-size: 1.9rem;}
/* Explore's first screen: a compact title; the region's patches enlarged with visible pixels. */
h1 {padding-top: 0.1rem; padding-bottom: 0.1rem; font-size: 2.2rem !important;}
[class*="st-key-card_"] {padding: 0.55rem 0.8rem !important;}
[class*="st-key-card_"] [data-testid="stMetricValue"] {font-size: 1.6rem;}
.st-key-region_patches img {image-rendering: pixelated;}
/* Accessibility (docs/accessibility.md): a focus ring every control shows when reached by keyboard,
   3:1 against both themes' backgrounds (#2f6fe0: 4.7:1 on white, 3.9:1 on the dark theme's); text
   only screen readers get (the live summary of the metric cards, the charts' long descriptions). */
:focus-visible {outline: 2px solid #2f6fe0 !important; outline-offset: 2px;}
/* White text on the primary colour: one red in both themes (5.6:1 under white text, 3.2:1 against
   the dark background as a boundary); the dark theme's own primary is light, for text on dark. */
button[data-testid^="stBaseButton-primary"]:not(:disabled),
[data-testid="stMultiSelect"] span[role="group"] > span {background-color: #c0303e !important;
  border-color: #c0303e !important; color: #fff !important;}
button[data-testid^="stBaseButton-primary"]:not(:disabled):hover {background-color: #a62a36 !important;
  border-color: #a62a36 !important;}
.lpx-sr-only {position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0;}
/* The distortion chain's icon buttons: their label names them for a screen reader, the icon shows. */
[class*="st-key-chain-"] button [data-testid="stMarkdownContainer"] {position: absolute; width: 1px; height: 1px;
  overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap;}
/* Their element takes no room in the page's flow: no height, and the block's gap (1rem) before it
   taken back. Not `position: absolute`, which would let them escape the scrolling main section
   and make the whole window scroll. */
div[data-testid="stElementContainer"]:has(> [data-testid="stMarkdown"] .lpx-sr-only) {height: 0; min-height: 0;
  overflow: hidden; margin-top: -1rem;}
/* Phones: room for the sidebar's toggle above the title. */
@media (max-width: 640px) {.block-container {padding-top: 3.2rem; padding-left: 1rem; padding-right: 1rem;}}
</style>
"""


def apply() -> None:
    st.html(CSS)
