"""Scoring folders on a Dask cluster: the ``--cluster tcp://host:8786`` runner of the command line.

The tasks are :mod:`core.folders.scoring`'s own (a block of pairs for ``dirs``, a tile of two image
blocks for ``allpairs``); this package only ships them to Dask's distributed scheduler and
brings the rows back in order. It is registered as the ``dask`` entry point of the
``lpips_explorer.runners`` group, so ``core`` never imports it.
"""

from .dask_runner import DaskRunner, connect

__all__ = ["DaskRunner", "connect"]
