"""The ground floor: what every other package may use and that imports no other package.

errors (the exceptions users see), atomic (files written whole), process (is a pid alive),
imaging (decoding images safely, the pixel limits), metrics (loss, error, ROC AUC, F1 per epoch),
presentation (words and number formats the pages and reports share), plots (the Plotly figures) and
fields (a settings dataclass as a table of knobs: CLI flags, ranges checked, the sweep's search).
"""
