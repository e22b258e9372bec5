"""OHLCV candles as numpy arrays: the container, resampling, the bundled history and the
strict reader for the CSV files people bring.

Pure: no database, no framework.  Prices here are floats on purpose: candles are inputs to
analysis, never money (the ledger and the matching engine keep integers).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backend.errors import BadRequest

FIELDS = ("open", "high", "low", "close", "volume")
# The header names read_ohlcv_csv accepts, case-insensitively; the first one present wins, so
# an export with both ``unix`` and ``date`` columns is read by its exact one.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "unix", "datetime", "date"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "volume_base", "vol"),
}
# A bare number below this is unix seconds (up to the year 5138), from here on milliseconds:
# no candle of interest sits near either edge, so the magnitude alone tells them apart.
MS_FROM = 10**11
# Millisecond values up to the same year; larger ones (microseconds, nanoseconds) are refused.
MS_UNTIL = 10**14
_UNIX = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
BUNDLED: dict[str, tuple[str, str]] = {
    "btc_usd_1h": ("BTC-USD", "1h"),
    "btc_usd_1d": ("BTC-USD", "1d"),
    "eth_usd_1d": ("ETH-USD", "1d"),
}
"""The history shipped in backend/signals/data/ (see its NOTICE.md): name -> market, interval."""

Floats = NDArray[np.float64]
Times = NDArray[np.int64]


class CsvRefused(BadRequest):
    """A CSV file refused whole: ``line`` is its 1-based line number, ``reason`` says why."""

    code = "csv_refused"
    line = 0
    reason = ""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Candles:
    """Candles in time order: ``time`` is each candle's opening time in unix seconds (UTC).

    The arrays are read-only, so a ``Candles`` can be shared (``load_bundled`` caches them)."""

    time: Times
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats

    def __post_init__(self) -> None:
        time = _frozen(self.time, np.int64)
        object.__setattr__(self, "time", time)
        for name in FIELDS:
            column = _frozen(getattr(self, name), np.float64)
            if column.shape != time.shape:
                raise ValueError(f"{name} has {column.size} values, time has {time.size}")
            object.__setattr__(self, name, column)
        if time.size > 1 and not bool(np.all(np.diff(time) > 0)):
            raise ValueError("candle times must be strictly increasing")

    @classmethod
    def empty(cls) -> Candles:
        nothing = np.empty(0)
        return cls(np.empty(0, np.int64), nothing, nothing, nothing, nothing, nothing)

    def __len__(self) -> int:
        return int(self.time.size)

    def __getitem__(self, index: slice) -> Candles:
        if not isinstance(index, slice):
            raise TypeError("Candles take a slice; read one value from its arrays")
        return Candles(*(getattr(self, name)[index] for name in ("time", *FIELDS)))

    def resample(self, factor: int, step: int | None = None) -> Candles:
        """Candles ``factor`` times longer (1h -> 4h with 4), each starting on a UTC multiple
        of its length (4h candles at 00:00, 04:00, ...; days at midnight).

        ``step`` is the length of one candle in seconds, by default the shortest gap between
        two of them.  A period missing any of its ``factor`` candles is left out: a day made
        of 20 hours would carry a false range and volume."""
        if factor < 1 or (step is not None and step < 1):
            raise ValueError("factor and step must be positive integers")
        if factor == 1 or len(self) == 0:
            return self
        if step is None:
            if len(self) < 2:
                raise ValueError("one candle does not tell its length: pass step")
            step = int(np.diff(self.time).min())
        period = step * factor
        keys = self.time // period
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        counts = np.diff(np.r_[starts, keys.size])
        full = counts == factor
        ends = (starts + counts - 1)[full]
        return Candles(
            keys[starts][full] * period,
            self.open[starts][full],
            np.maximum.reduceat(self.high, starts)[full],
            np.minimum.reduceat(self.low, starts)[full],
            self.close[ends],
            np.add.reduceat(self.volume, starts)[full],
        )


def _frozen(values: Any, dtype: type[np.generic]) -> NDArray[Any]:
    array = np.array(values, dtype=dtype)  # a copy: the caller's array stays the caller's
    if array.ndim != 1:
        raise ValueError("candle columns are one-dimensional")
    array.flags.writeable = False
    return array


@cache
def load_bundled(name: str) -> Candles:
    """The bundled history ``name`` (a key of ``BUNDLED``), read and checked once."""
    if name not in BUNDLED:
        raise KeyError(f"no bundled history {name!r}; there are {', '.join(BUNDLED)}")
    packed = resources.files("backend.signals").joinpath("data", f"{name}.csv.gz").read_bytes()
    return read_ohlcv_csv(gzip.decompress(packed).decode())


def read_ohlcv_csv(source: str | bytes | os.PathLike[str]) -> Candles:
    """Candles from a CSV with a header row: a path (``pathlib.Path``), or the file's content
    as text or bytes.  A malformed file raises ``CsvRefused`` and nothing of it is used.

    Columns are found by name (``ALIASES``, any case; others are ignored).  Times may be unix
    seconds, unix milliseconds or ISO-8601 (a time without zone is UTC), the same kind on
    every row, strictly increasing."""
    if isinstance(source, os.PathLike):
        with open(source, "rb") as file:
            source = file.read()
    if isinstance(source, bytes):
        source = _decode(source)
    return _parse(source.removeprefix("\ufeff"))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvRefused(data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None


def _parse(text: str) -> Candles:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for header in reader:
        if any(cell.strip() for cell in header):
            break
    else:
        raise CsvRefused(1, "empty file")
    places = _columns(header, reader.line_num)
    times: list[int] = []
    values: list[list[float]] = [[] for _ in FIELDS]
    kind = ""
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines (a trailing one, say) carry nothing
        if len(record) > len(header):
            raise CsvRefused(line, f"{len(record)} fields, the header has {len(header)}")
        if len(record) <= max(places.values()):
            raise CsvRefused(line, f"only {len(record)} fields, the header has {len(header)}")
        time, row_kind = _time(record[places["time"]], line)
        kind = kind or row_kind
        if row_kind != kind:
            raise CsvRefused(line, f"time is {row_kind}, earlier rows are {kind}")
        o, h, lo, c, v = (_number(record[places[name]], name, line) for name in FIELDS)
        _check(o, h, lo, c, v, line)
        if times and time <= times[-1]:
            why = "duplicate time" if time == times[-1] else "times not in ascending order"
            raise CsvRefused(line, f"{why} ({_iso(time)} after {_iso(times[-1])})")
        times.append(time)
        for column, value in zip(values, (o, h, lo, c, v), strict=True):
            column.append(value)
    if not times:
        raise CsvRefused(reader.line_num + 1, "empty file: no candles after the header")
    return Candles(np.array(times, np.int64), *(np.array(column) for column in values))


def _columns(header: list[str], line: int) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    places: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        found = next((alias for alias in aliases if alias in names), None)
        if found is not None:
            places[field] = names.index(found)
    missing = [field for field in ALIASES if field not in places]
    if missing:
        hint = " (fields must be separated by commas)" if len(header) == 1 else ""
        raise CsvRefused(line, f"missing columns: {', '.join(missing)}{hint}")
    return places


def _number(cell: str, name: str, line: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise CsvRefused(line, f"unparsable number in {name}: {cell.strip()!r}") from None
    if not math.isfinite(value):
        raise CsvRefused(line, f"unparsable number in {name}: {cell.strip()!r} is not finite")
    return value


def _check(o: float, h: float, lo: float, c: float, v: float, line: int) -> None:
    for name, price in zip(FIELDS, (o, h, lo, c), strict=False):
        if price <= 0:
            raise CsvRefused(line, f"non-positive price: {name} is {price:g}")
    if v < 0:
        raise CsvRefused(line, f"negative volume: {v:g}")
    if h < lo:
        raise CsvRefused(line, f"high below low: {h:g} < {lo:g}")
    for name, price in (("open", o), ("close", c)):
        if not lo <= price <= h:
            raise CsvRefused(line, f"{name} outside [low, high]: {price:g} not in [{lo:g}, {h:g}]")


def _time(cell: str, line: int) -> tuple[int, str]:
    """Unix seconds and the kind of time the cell held."""
    text = cell.strip()
    if _UNIX.match(text):
        value = Decimal(text)
        kind = "unix seconds"
        if value >= MS_UNTIL:
            raise CsvRefused(line, f"unparsable time {text!r}: beyond unix milliseconds")
        if value >= MS_FROM:
            value, kind = value / 1000, "unix milliseconds"
        if value != value.to_integral_value():
            raise CsvRefused(line, f"unparsable time {text!r}: not a whole second")
        return int(value), kind
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CsvRefused(line, f"unparsable time {text!r}") from None
    if moment.microsecond:
        raise CsvRefused(line, f"unparsable time {text!r}: not a whole second")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()), "ISO-8601"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
