"""Scoring whole folders (the ``dirs`` and ``allpairs`` commands, and the cluster runner):
:mod:`.scoring` cuts the work into tasks and turns them into rows, :mod:`.states` holds what a
task is given and what it keeps per image, :mod:`.pairwise` turns two blocks of image states into
every pair's values, and :mod:`.tables` writes the rows (CSV, Parquet, an N×N ``.npy`` matrix)."""
