"""Sweeps: an experiment over a grid of config values × seeds, and composed sub-runs.

    python -m jaxdl.sweep --config=experiments/<name>.py --workdir=DIR \\
        --grid='optimizer.lr=1e-3,3e-3' --grid='model.dropout=0.0,0.5' --seeds=0,1,2

Modules: ``cli`` (the command), ``grid`` (axes, combinations and their configs),
``subruns`` (sub-runs in sub-directories, skipped when finished, resumed when
interrupted), ``table`` (mean ± std over seeds, paired differences, markdown),
``plots`` and ``progress`` (the one progress reporter on stderr). Importing the
package imports none of them (``python -m jaxdl.sweep`` runs ``cli.main``).
"""
