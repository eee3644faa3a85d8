"""MaskRec: explore a face dataset, train the report's networks, judge them, recognise masks.

Run with ``streamlit run streamlit_app.py``. Pages are thin; the work is in the ``maskrec`` package,
their shared widgets in ``ui/`` (not in ``pages/``: Streamlit's legacy mode lists every ``pages/*.py``).

On a cold server the first run is in that legacy mode: the browser is first sent the list of
``pages/*.py`` (with this file as "streamlit app"), shown until ``st.navigation`` below replaces it.
So nothing slow is imported before ``st.navigation``: a page's imports (torch) come with ``pg.run()``
(``ui.dataset_choice``, imported here, needs only streamlit and maskrec.config).
"""
import streamlit as st

from ui.dataset_choice import ALLOW_LABEL, SOURCES, keep_in_url
from ui.start import app_icon


def home():
    st.title("MaskRec: face-mask recognition")
    st.markdown(
        "Explore a face dataset, train the coursework report's two CNNs, watch them learn live, judge them, "
        "then point a camera at people to see who wears a mask.\n\n"
        "| Page | What it does |\n|---|---|\n"
        "| **Dataset** | Counts, class balance, image-size distributions, samples as the network sees them, "
        "skipped files, duplicates and train/test leaks. |\n"
        "| **Train** | Start Net1, Net2 (or ResNet-18) in the background with the report's recipes (every value editable); "
        "live loss, error, ROC AUC and F1 charts; stop, resume, and every past run from disk. |\n"
        "| **Evaluate** | ROC and precision-recall curves, confusion matrix, a threshold picker that saves into "
        "the checkpoint, mistakes, and Net1 vs Net2 side by side. |\n"
        "| **Recognize** | Find every face in a photo, a snapshot or a live webcam stream and classify it. |\n"
        "| **Cameras** | Follow the IP cameras of `python -m maskrec serve --cameras` (or a broker): frames, people, "
        "masked share, events with evidence, trends, a compliance report. |\n\n"
        f"No data needed to start: the sidebar's **{SOURCES['demo']}** is drawn on first use. For your own "
        f"data choose **{SOURCES['folder']}** in the sidebar and type its path (report layout "
        "`train/000123_1.jpg`, `with_mask/` + `without_mask/` folders, or annotated photos), or "
        f"**{SOURCES['upload']}**. The choice stays as you move between pages and through a reload. The folder "
        "field's help lists the folders it may open; for one outside them the sidebar offers "
        f"**{ALLOW_LABEL}** when the app runs on your own machine (on a shared server, its "
        "`MASKREC_DATA_ROOTS` decides)."
    )


# Before st.navigation: a page icon set later would let the page's own :material/...: icon be the
# favicon, fetched from a font server on the internet (app_icon only needs PIL: quick).
st.set_page_config(page_title="MaskRec", page_icon=app_icon(), layout="wide")
pg = st.navigation([
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_Dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("pages/2_Train.py", title="Train", icon=":material/monitoring:"),
    st.Page("pages/3_Evaluate.py", title="Evaluate", icon=":material/target:"),
    st.Page("pages/4_Recognize.py", title="Recognize", icon=":material/photo_camera:"),
    st.Page("pages/5_Cameras.py", title="Cameras", icon=":material/videocam:"),
])
keep_in_url()  # a page switch drops the URL's ?data=...: put it back, so that a reload keeps the dataset
pg.run()
