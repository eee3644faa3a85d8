"""Recognize: placeholder until the recognition issue lands face detection."""
import streamlit as st

from pages.common import through_navigation

through_navigation()
st.title("Recognize")
st.info("Face detection and live webcam recognition arrive with the recognition issue. "
        "Until then, `python -m maskrec predict CHECKPOINT IMAGE...` classifies whole images.")
