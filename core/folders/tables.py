"""Writing rows of scores: CSV (text, 6 decimals), Parquet (typed columns, full precision) and
the N×N matrix of one metric for ``allpairs`` (``.npy``, written in place, never all in memory).

A row is a dict: ``ref``, ``dist``, ``status`` (``ok``/``error``), ``error``, one float per
metric and per LPIPS layer, then the settings the values depend on (``net``, ``ssim_mode``...).

>>> import io
>>> buf = io.StringIO()
>>> sink = CsvSink(buf, ["ref", "dist", "status", "error", "psnr"], digits={"psnr": 6})
>>> sink.write({"ref": "a.png", "dist": "b.png", "status": "ok", "error": "", "psnr": 31.25})
>>> buf.getvalue().splitlines()
['ref,dist,status,error,psnr', 'a.png,b.png,ok,,31.250000']
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

__all__ = ["CsvSink", "MatrixSink", "ParquetSink", "format_value"]

TEXT_COLUMNS = ("ref", "dist", "status", "error")


def format_value(value: Any, digits: int = 6) -> str:
    """A number as the CSV writes it: ``digits`` decimals, empty for NaN (not computed),
    ``inf``/``-inf`` spelled out."""
    if isinstance(value, bool) or not isinstance(value, float):
        return "" if value is None else str(value)
    if math.isnan(value):
        return ""
    return f"{value:.{digits}f}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


class CsvSink:
    """Rows to a CSV file (or standard output), numbers with ``digits[column]`` decimals."""

    def __init__(self, out: TextIO, fields: Sequence[str], digits: dict[str, int]) -> None:
        self.out, self.fields, self.digits = out, list(fields), digits
        self.writer = csv.DictWriter(out, fieldnames=self.fields, restval="", extrasaction="ignore")
        self.writer.writeheader()

    def write(self, row: dict) -> None:
        self.writer.writerow({k: format_value(v, self.digits.get(k, 6)) if k in self.digits else v
                              for k, v in row.items()})

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.out is not sys.stdout:
            self.out.close()
        else:
            self.out.flush()


class ParquetSink:
    """Rows to a Parquet file in row groups of ``group_rows``: text columns as strings, numbers as
    float64 at full precision (null where not computed), ``calibrated`` as a boolean."""

    def __init__(self, path: Path, fields: Sequence[str], numeric: Sequence[str], group_rows: int = 65536) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.fields, self.numeric = pa, list(fields), set(numeric)
        columns = []
        for name in self.fields:
            kind = pa.float64() if name in self.numeric else pa.bool_() if name == "calibrated" else pa.string()
            columns.append(pa.field(name, kind))
        self.schema = pa.schema(columns)
        self.writer = pq.ParquetWriter(str(path), self.schema)
        self.group_rows = group_rows
        self.buffer: list[dict] = []

    def _cell(self, name: str, value: Any):
        if value is None or value == "" and name not in TEXT_COLUMNS:
            return None
        if name in self.numeric:
            number = float(value)
            return None if math.isnan(number) else number
        if name == "calibrated":
            return bool(value) if not isinstance(value, str) else value == "True"
        return str(value)

    def write(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.group_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        data = {name: [self._cell(name, row.get(name)) for row in self.buffer] for name in self.fields}
        self.writer.write_table(self.pa.table(data, schema=self.schema))
        self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()


class MatrixSink:
    """The N×N matrix of one metric over the sorted file list (float32 ``.npy``, memory-mapped):
    both (i, j) and (j, i) set, the diagonal the metric's value for identical images, NaN where
    a pair failed or was not compared (different sizes, a file that did not load)."""

    def __init__(self, path: Path, files: Sequence[str], metric: str, identical: float, loaded: Sequence[bool]) -> None:
        self.index = {name: i for i, name in enumerate(files)}
        self.metric = metric
        self.matrix = np.lib.format.open_memmap(str(path), mode="w+", dtype=np.float32, shape=(len(files), len(files)))
        self.matrix[:] = np.nan
        for i, ok in enumerate(loaded):
            if ok:
                self.matrix[i, i] = identical

    def write(self, row: dict) -> None:
        if row.get("status") != "ok":
            return
        value = row.get(self.metric)
        if value is None:
            return
        i, j = self.index[row["ref"]], self.index[row["dist"]]
        self.matrix[i, j] = self.matrix[j, i] = float(value)

    def close(self) -> None:
        self.matrix.flush()
        del self.matrix
