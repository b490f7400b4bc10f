"""The cell cache behind ``%%track --cache``: skip a cell whose every input is unchanged.

- what a value *is* for the key is :mod:`nbops.hashing.identity`'s (data by content, functions
  and classes of the notebook by their code, modules and imported objects by package version).
- :mod:`~nbops.cache.hazards`: what makes a cell's result depend on more than its inputs (the
  global random state, the clock, the network, files outside the project, IPython magics):
  such a cell is never served from the cache unless ``--cache=force``.
- :mod:`~nbops.cache.key`: the key (code, inputs, files, package versions) and why a cell
  cannot have one.
- :mod:`~nbops.cache.outputs`: what a cell leaves behind (names, printed text, displays, its
  value, files it wrote), stored only where it restores exactly.
- :mod:`~nbops.cache.store`: the entries on disk beside the store, size-capped.
- :mod:`~nbops.cache.cell`: one cached execution, for ``%%track --cache`` and pipeline steps
  (:mod:`nbops.pipeline.step_cache`).
- :mod:`~nbops.cache.listing`: what ``nbops cache ls|clear`` show.

Nothing here is imported until a cell asks for the cache.
"""
