"""The config around Hydra: typed schemas of the groups users type into (``schemas.py``), the checks composition
cannot make (``checks.py``), and composition errors reported in one line (``composition_errors.py``)."""
