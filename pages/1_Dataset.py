"""Dataset explorer: counts, class balance, image sizes, samples, and data health."""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

import streamlit as st

st.title("Dataset explorer")
# A first visit imports torch, pandas, scipy and Plotly (2 s or more on a cold server): a spinner
# under the title says so, where the page stood blank (issue 37).
with st.spinner("Loading the dataset tools (first visit only)…"):
    import random

    import pandas as pd

    from maskrec.core import plots
    from maskrec.data import DataError, discover, network_views, open_rgb, scan
    from maskrec.data.health import duplicates
    from maskrec.data.overrides import OverridesError
    from maskrec.core.presentation import number
    from ui import review
    from ui.common import dataset_picker, image_grid, memo, progress_callback

path = dataset_picker()
if path is None:
    st.info("Choose a dataset in the sidebar: the built-in demo data, a folder on the server, or a .zip upload.")
    st.stop()


bar = st.progress(0.0, text="Scanning image headers…")
try:
    raw = review.as_on_disk(path)  # the review section's decisions are about these files
    # keyed by the decisions too: a decision made below shows in these counts on the rerun it causes
    rep = memo(("scan", path, review.decisions_token(raw)),
               lambda: scan(discover(path), progress_callback(bar, "Scanning image headers")), ttl=120)
except OverridesError as e:
    bar.empty()
    review.overrides_problem(e)
    st.stop()
except DataError as e:
    bar.empty()
    st.error(f"This dataset cannot be used: {e}")
    st.stop()
bar.empty()
s, rows = rep["summary"], rep["images"]
c = s["counts"]

st.caption(f"`{s['root']}` · layout: **{s['layout']}**"
           + (" · no test split in the folder: a stratified, seeded 25% is held out" if s["held_out"] else ""))
cols = st.columns(5)
cols[0].metric("Images", f"{s['total']:,}")
cols[1].metric("Train", f"{c['train'][0] + c['train'][1]:,}")
cols[2].metric("Test", f"{c['test'][0] + c['test'][1]:,}")
covered = c["train"][1] + c["test"][1]
cols[3].metric("Covered share", f"{covered / max(s['total'], 1):.1%}")
cols[4].metric("Skipped files", len(s["skipped"]))

left, right = st.columns([1, 1])
with left:
    st.subheader("Class balance")
    st.plotly_chart(plots.class_balance(c))
with right:
    st.subheader("Counts")
    st.dataframe(pd.DataFrame({"covered (1)": [c["train"][1], c["test"][1]], "bare (0)": [c["train"][0], c["test"][0]]},
                              index=["train", "test"]))
    st.write("Formats: " + ", ".join(f"{k} {v:,}" for k, v in s["formats"].items()))
    w, h = s["width"], s["height"]
    st.write(f"Width min / median / max: {' / '.join(number(w.get(k)) for k in ('min', 'median', 'max'))} px  \n"
             f"Height min / median / max: {' / '.join(number(h.get(k)) for k in ('min', 'median', 'max'))} px  \n"
             f"Shorter side ≥ 32 px: **{s['share_shorter_side_ge_32']:.1%}** · < 128 px: "
             f"**{s['share_shorter_side_lt_128']:.1%}**")

st.subheader("Image sizes")
st.caption("Dashed lines mark the networks' input sizes: Net1 sees 32×32, Net2 64×64. Most images are larger "
           "and get squashed to that size, the report's reason for Net2's bigger input.")
a, b, cc = st.columns(3)
a.plotly_chart(plots.size_histogram(rows, "width"))
b.plotly_chart(plots.size_histogram(rows, "height"))
cc.plotly_chart(plots.aspect_histogram(rows))
st.plotly_chart(plots.size_scatter(rows))

st.subheader("Samples")
opt1, opt2, opt3 = st.columns([1, 1, 2])
size = opt1.radio("Network view", [32, 64], horizontal=True, format_func=lambda v: f"{v}×{v}", key="net_view")
per = opt2.slider("Per label", 4, 24, 8, step=4)
if opt3.button("Reshuffle samples"):
    st.session_state["sample_seed"] = random.randrange(1 << 30)
rng = random.Random(st.session_state.get("sample_seed", 0))
for label, name in ((1, "Covered (label 1)"), (0, "Bare (label 0)")):
    pool = [r for r in rows if r["label"] == label]
    pick = rng.sample(pool, min(per, len(pool)))
    views = network_views([r["path"] for r in pick], size)
    st.markdown(f"**{name}**: original size, then as the network sees it ({size}×{size}, shown enlarged)")
    image_grid([o for o, _ in views], [f"{o.width}×{o.height}" for o, _ in views], cols=8, width=None)
    image_grid([v for _, v in views], [r["split"] for r in pick], cols=8, width=96)

st.subheader("Data health")
if s["skipped"]:
    st.warning(f"{len(s['skipped'])} files were skipped; training uses the rest.")
    st.dataframe(pd.DataFrame(s["skipped"]), hide_index=True)
else:
    st.success("Every file was readable and labelled.")


if st.toggle("Find exact and near-duplicate images, and train/test leaks", value=s["total"] <= 10_000,
             help="pHash and pixel check on the 32×32 decoded cache; the first run decodes every image once."):
    bar = st.progress(0.0, text="Decoding for duplicate search…")
    dup = memo(("duplicates", path, s["total"], review.decisions_token(raw)), lambda: duplicates(discover(path), progress_callback(bar, "Decoding")),
               ttl=600)
    bar.empty()
    d1, d2, d3, d4 = st.columns(4)
    d1.metric("Exact duplicate copies", dup["exact_extra_copies"])
    d2.metric("Near-duplicate pairs", dup["near_pairs"])
    d3.metric("Pairs leaking train↔test", len(dup["leaks"]))
    d4.metric("Pairs with conflicting labels", len(dup["label_conflicts"]))
    if dup["leaks"]:
        st.error("These images have a (near-)copy on the other side of the train/test split, which inflates test scores.")
    shown = dup["leaks"] or dup["pairs"]
    for p in shown[:6]:
        x, y, t = st.columns([1, 1, 3])
        x.image(open_rgb(p["a"]), width=110, caption=f"{p['split_a']} · label {p['label_a']}")
        y.image(open_rgb(p["b"]), width=110, caption=f"{p['split_b']} · label {p['label_b']}")
        t.caption(f"{p['kind']} duplicate · pHash distance {p['phash_dist']} · pixel RMS {p['pixel_rms']}  \n"
                  f"`{p['a']}`  \n`{p['b']}`")
    if len(shown) > 6:
        with st.expander(f"All {len(shown)} pairs"):
            st.dataframe(pd.DataFrame(shown), hide_index=True)

review.section(raw, size)
