"""Turns results into images and Plotly figures. Computes no metric."""
