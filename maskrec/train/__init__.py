"""Training: the plain loop (``loop``), what one step computes (``recipe``, ``distill``, ``masks``
drawn on bare faces), the data a run trains on (``splits``), one run on disk (``runs``,
``runstate``, ``run``), sweeps and their time estimate (``sweep``, ``budget``), weight soups,
several processes (``distributed``), the suspect finder (``suspects``) and the training jobs the
app starts (``jobs``).
"""
