"""Candles for AI signals: the bundled history, the strict CSV reader, resampling, storing
candles and ``simplrefq signals import``, on SQLite and on PostgreSQL.

Nothing here downloads: the extraction script's normalisers run on small samples in the
source files' own formats, and the bundled files are checked against what it would write.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import importlib.util
import io
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backend.cli import main
from backend.db import migrate
from backend.db.engine import Database
from backend.db.migrations.tables import metadata
from backend.db.uow import unit_of_work
from backend.signals.candles import BUNDLED, Candles, CsvRefused, load_bundled, read_ohlcv_csv
from backend.signals.history import (
    INTERVALS,
    CandlesExist,
    CandlesRefused,
    import_candles,
    load_candles,
    record_candle,
)
from tests.helpers import make_settings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "backend" / "signals" / "data"
HEADER = "time,open,high,low,close,volume\n"
_OHLCV = ("open", "high", "low", "close", "volume")
T0 = 1_571_270_400  # 2019-10-17 00:00 UTC
EXPECTED = {
    # name: rows, first candle, last candle (NOTICE.md's table)
    "btc_usd_1h": (20_110, "2017-07-01 11:00", "2019-10-17 08:00"),
    "btc_usd_1d": (1_769, "2014-12-01 00:00", "2019-10-16 00:00"),
    "eth_usd_1d": (787, "2017-11-09 00:00", "2020-01-16 00:00"),
}


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _script() -> ModuleType:
    """scripts/extract_history.py as a module (scripts/ is not a package)."""
    name = "extract_history"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules[name]


def _csv(*rows: str, header: str = HEADER) -> str:
    return header + "".join(row + "\n" for row in rows)


def _hours(count: int, start: int = T0) -> str:
    """``count`` consistent hourly candles as CSV text."""
    rows = []
    for i in range(count):
        price = 100 + i
        rows.append(f"{start + 3600 * i},{price},{price + 2},{price - 1},{price + 1},{i}")
    return _csv(*rows)


# --- the bundled history ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_history_loads_clean(name: str) -> None:
    candles = load_bundled(name)
    rows, first, last = EXPECTED[name]
    assert len(candles) == rows
    assert (_utc(int(candles.time[0])), _utc(int(candles.time[-1]))) == (first, last)
    assert np.all(np.diff(candles.time) > 0)  # sorted, each time once
    assert np.all(candles.time % INTERVALS[BUNDLED[name][1]] == 0)
    assert np.all(candles.low > 0)
    assert np.all(candles.high >= candles.low)
    for price in (candles.open, candles.close):
        assert np.all((candles.low <= price) & (price <= candles.high))
    assert np.all(candles.volume >= 0)
    assert not candles.close.flags.writeable
    assert load_bundled(name) is candles  # read once


def test_unknown_bundled_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="btc_usd_1h"):
        load_bundled("doge_usd_1m")


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_files_are_exactly_what_the_script_writes(name: str) -> None:
    """Re-encoding a bundled file's rows gives its bytes: same format, same gzip header
    (mtime 0, no file name), so rerunning the extraction changes nothing."""
    packed = (DATA / f"{name}.csv.gz").read_bytes()
    assert packed[4:8] == bytes(4)  # gzip mtime
    lines = list(csv.reader(io.StringIO(gzip.decompress(packed).decode())))
    assert lines[0] == HEADER.strip().split(",")
    rows = [(int(row[0]), *row[1:]) for row in lines[1:]]
    assert _script().encode(rows) == packed


def test_bundled_files_and_their_notice_ship_in_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"signals/data/*"' in pyproject
    notice = (DATA / "NOTICE.md").read_text()
    assert "CryptoDataDownload" in notice
    for name in BUNDLED:
        assert f"{name}.csv.gz" in notice


# --- the extraction script's normalisers (no network) ------------------------------------------

CDD_SAMPLE = """\
Timestamps are UTC timezone,https://www.CryptoDataDownload.com
date,symbol,open,high,low,close,volume_btc,volume
2019-10-17 01-PM,BTCUSD,8003,8010,8000,8005.5,0.25,2000
2019-10-17 12-PM,BTCUSD,8001,8004,7999,8003,1.0,8000
2019-10-17 01-AM,BTCUSD,8000.0,8002,7990,8001,3,24000
2019-10-17 12-AM,BTCUSD,7990,8001,7980,8000,4.50,36000
2019-10-17 12-AM,BTCUSD,7990,8001,7980,8000,4.50,36000
"""

WIDE_SAMPLE = """\
,BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume
2017-11-08,7000,7100,6900,7050,10,,,,,
2017-11-09,7050,7200,7000,7100,12,300.5,310,290,305,1000.0
2017-11-10,7100,7150,6800,6900,15,305,306,280,290,2000
2017-11-11,6900,7000,6850,6950,1,290,300,289,299,50
"""


def test_normalise_cryptodatadownload_export() -> None:
    """Banner and extra columns gone, 12-hour clock read right (12 AM is midnight), oldest
    first, the duplicate once, the newest (in-progress) candle dropped, base volume kept."""
    rows = _script().normalise_cdd(CDD_SAMPLE, "BTC")
    assert rows == [
        (T0, "7990", "8001", "7980", "8000", "4.5"),
        (T0 + 3600, "8000", "8002", "7990", "8001", "3"),
        (T0 + 12 * 3600, "8001", "8004", "7999", "8003", "1"),
    ]


def test_normalise_wide_table_takes_one_asset() -> None:
    rows = _script().normalise_wide(WIDE_SAMPLE, "ETH")
    day = 1_510_185_600  # 2017-11-09
    assert rows == [
        (day, "300.5", "310", "290", "305", "1000"),
        (day + 86400, "305", "306", "280", "290", "2000"),
    ]


def test_normalised_output_is_deterministic_and_reads_back() -> None:
    script = _script()
    rows = script.normalise_cdd(CDD_SAMPLE, "BTC")
    packed = script.encode(rows)
    assert packed == script.encode(rows)
    candles = read_ohlcv_csv(gzip.decompress(packed))
    assert candles.time.tolist() == [T0, T0 + 3600, T0 + 12 * 3600]
    assert candles.volume.tolist() == [4.5, 3.0, 1.0]


def test_normaliser_refuses_doubtful_sources() -> None:
    script = _script()
    with pytest.raises(script.SourceError, match="banner"):
        script.normalise_cdd(CDD_SAMPLE.split("\n", 1)[1], "BTC")
    clash = CDD_SAMPLE.replace("4.50,36000\n", "9,1\n", 1)
    with pytest.raises(script.SourceError, match="two different candles"):
        script.normalise_cdd(clash, "BTC")
    with pytest.raises(script.SourceError, match="missing columns"):
        script.normalise_cdd(CDD_SAMPLE, "ETH")


# --- reading users' CSV files ------------------------------------------------------------------

GOOD = "1571270400,10,12,9,11,5"
REFUSALS: list[tuple[str, str | bytes, int, str]] = [
    ("empty file", "", 1, "empty file"),
    ("blank file", "\n\n", 1, "empty file"),
    ("header only", HEADER, 2, "empty file: no candles after the header"),
    ("no header", _csv(GOOD, header=""), 1, "missing columns: time, open, high, low, close"),
    ("missing columns", _csv("1571270400,10,12", header="time,open,high\n"), 1, "missing"),
    ("semicolons", "time;open;high;low;close;volume\n1;2;3;1;2;0\n", 1, "missing columns: time"),
    (
        "missing volume",
        _csv(GOOD[:-2], header="time,open,high,low,close\n"),
        1,
        "missing columns: volume",
    ),
    ("unparsable number", _csv(GOOD, "1571274000,10,1x,9,11,5"), 3, "unparsable number in high"),
    ("empty number", _csv(GOOD, "1571274000,10,12,9,11,"), 3, "unparsable number in volume"),
    ("infinite number", _csv(GOOD, "1571274000,10,inf,9,11,5"), 3, "unparsable number in high"),
    ("unparsable time", _csv(GOOD, "yesterday,10,12,9,11,5"), 3, "unparsable time 'yesterday'"),
    (
        "fraction of a second",
        _csv("1571270400.5,10,12,9,11,5"),
        2,
        "unparsable time '1571270400.5': not",
    ),
    (
        "microseconds",
        _csv("1571270400000000,10,12,9,11,5"),
        2,
        "unparsable time '1571270400000000'",
    ),
    ("mixed times", _csv(GOOD, "2019-10-17T01:00:00Z,10,12,9,11,5"), 3, "time is ISO-8601"),
    ("zero price", _csv(GOOD, "1571274000,0,12,9,11,5"), 3, "non-positive price: open is 0"),
    ("negative price", _csv(GOOD, "1571274000,10,12,-9,11,5"), 3, "non-positive price: low"),
    ("negative volume", _csv(GOOD, "1571274000,10,12,9,11,-5"), 3, "negative volume: -5"),
    ("high below low", _csv(GOOD, "1571274000,10,8,9,11,5"), 3, "high below low: 8 < 9"),
    ("open outside", _csv(GOOD, "1571274000,13,12,9,11,5"), 3, "open outside [low, high]"),
    ("close outside", _csv(GOOD, "1571274000,10,12,9,8.5,5"), 3, "close outside [low, high]"),
    ("unsorted", _csv(GOOD, "1571274000,10,12,9,11,5", GOOD), 4, "times not in ascending order"),
    ("duplicate", _csv(GOOD, GOOD), 3, "duplicate time (2019-10-17T00:00:00Z after"),
    ("extra field", _csv(GOOD + ",7"), 2, "7 fields, the header has 6"),
    ("short row", _csv(GOOD, "1571274000,10,12"), 3, "only 3 fields"),
    ("lines count blanks", "\n" + _csv(GOOD, "", "1571274000,10,12,9,11,-1"), 5, "negative"),
    ("not UTF-8", _csv(GOOD).encode() + b"1571274000,10,12,9,11,5\xff\n", 3, "not UTF-8"),
]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_malformed_csv_is_refused_naming_line_and_reason(
    content: str | bytes, line: int, reason: str
) -> None:
    with pytest.raises(CsvRefused) as refused:
        read_ohlcv_csv(content)
    assert refused.value.line == line
    assert refused.value.reason.startswith(reason), refused.value.reason
    if "semicolon" in str(content):
        assert refused.value.reason.endswith("(fields must be separated by commas)")
    assert refused.value.code == "csv_refused"
    assert str(refused.value) == f"line {line}: {refused.value.reason}"


TIME_FORMATS: dict[str, Callable[[int], str]] = {
    "unix seconds": str,
    "unix seconds with a zero fraction": lambda t: f"{t}.0",
    "unix milliseconds": lambda t: str(t * 1000),
    "ISO with Z": lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "ISO naive (UTC)": lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S"),
    "ISO with an offset": lambda t: (
        datetime.fromtimestamp(t, UTC)
        .astimezone(datetime.fromisoformat("2000-01-01T00:00+02:00").tzinfo)
        .isoformat()
    ),
    "ISO date": lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d"),
}


@pytest.mark.parametrize("kind", sorted(TIME_FORMATS))
def test_times_in_seconds_milliseconds_and_iso_read_alike(kind: str) -> None:
    write = TIME_FORMATS[kind]
    days = [T0, T0 + 86400, T0 + 2 * 86400]
    candles = read_ohlcv_csv(_csv(*(f"{write(t)},10,12,9,11,5" for t in days)))
    assert candles.time.tolist() == days
    assert candles.time.dtype == np.int64


def test_columns_are_found_by_alias_in_any_case_and_order(tmp_path: Path) -> None:
    content = (
        "\ufeffSymbol,Timestamp,OPEN,High,low,Close,Vol\n"
        "BTCUSD,1571270400000,10,12,9,11,5\n"
        "BTCUSD,1571274000000,11,13,10,12,6\n"
        "\n"
    )
    path = tmp_path / "export.csv"
    path.write_text(content)
    for source in (content, content.encode(), path):
        candles = read_ohlcv_csv(source)
        assert candles.time.tolist() == [T0, T0 + 3600]
        assert candles.open.tolist() == [10.0, 11.0]
        assert candles.volume.tolist() == [5.0, 6.0]
    # An exact unix column wins over a human date column beside it.
    both = "unix,date,open,high,low,close,volume\n1571270400,garbage,10,12,9,11,5\n"
    assert read_ohlcv_csv(both).time.tolist() == [T0]


# --- the container and resampling --------------------------------------------------------------


def test_resample_hours_to_four_hours_on_utc_boundaries() -> None:
    """01:00-03:00 and 08:00-10:00 are incomplete groups and dropped; 04:00-07:00 is one."""
    hours = read_ohlcv_csv(_hours(10, start=T0 + 3600))  # 01:00 .. 10:00
    four = hours.resample(4)
    assert four.time.tolist() == [T0 + 4 * 3600]
    # The group is rows 3..6 of _hours: prices 103..106.
    assert four.open.tolist() == [103.0]
    assert four.high.tolist() == [108.0]
    assert four.low.tolist() == [102.0]
    assert four.close.tolist() == [107.0]
    assert four.volume.tolist() == [3.0 + 4 + 5 + 6]


def test_resample_drops_a_period_with_a_gap() -> None:
    hours = read_ohlcv_csv(_hours(8))  # 00:00 .. 07:00
    gap = hours.time != T0 + 5 * 3600
    holed = Candles(*(getattr(hours, f)[gap] for f in ("time", *_OHLCV)))
    assert hours.resample(4).time.tolist() == [T0, T0 + 4 * 3600]
    assert holed.resample(4, step=3600).time.tolist() == [T0]
    assert hours.resample(1) is hours


def test_bundled_hours_resample_to_whole_days() -> None:
    days = load_bundled("btc_usd_1h").resample(24)
    assert np.all(days.time % 86400 == 0)
    assert len(days) == 837  # the first, partial day (from 11:00) and the last are left out
    assert _utc(int(days.time[0])) == "2017-07-02 00:00"


def test_candles_keep_their_invariants() -> None:
    candles = read_ohlcv_csv(_hours(5))
    assert len(candles[1:3]) == 2
    assert candles[1:3].time.tolist() == [T0 + 3600, T0 + 7200]
    with pytest.raises(TypeError):
        candles[0]  # type: ignore[index]
    with pytest.raises(ValueError, match="strictly increasing"):
        Candles(candles.time[::-1], *(getattr(candles, f) for f in _OHLCV))
    with pytest.raises(ValueError, match="has 4 values"):
        Candles(candles.time, candles.open[:4], *(getattr(candles, f) for f in _OHLCV[1:]))
    with pytest.raises(ValueError, match="read-only"):
        candles.close[0] = 1.0
    assert len(Candles.empty()) == 0


# --- the stored candles ------------------------------------------------------------------------


async def _count(db: Database, market: str | None = None) -> int:
    sql = "SELECT count(*) FROM signal_candles"
    if market is not None:
        sql += " WHERE market = :market"
    async with db.engine.connect() as connection:
        return int((await connection.execute(text(sql), {"market": market})).scalar_one())


async def test_import_and_load_round_trip(db: Database) -> None:
    candles = read_ohlcv_csv(_hours(30))
    async with unit_of_work(db) as uow:
        assert await import_candles(uow, "BTC-USD", "1h", candles) == 30
    async with db.sessions() as session:
        loaded = await load_candles(session, "BTC-USD", "1h")
        recent = await load_candles(session, "BTC-USD", "1h", since=T0 + 20 * 3600)
        other = await load_candles(session, "BTC-USD", "4h")
    for name in ("time", *_OHLCV):
        assert np.array_equal(getattr(loaded, name), getattr(candles, name))
    assert recent.time.tolist() == candles.time[20:].tolist()
    assert len(other) == 0


async def test_import_is_all_or_nothing_and_never_overwrites(db: Database) -> None:
    async with unit_of_work(db) as uow:
        await import_candles(uow, "ETH-USD", "1h", read_ohlcv_csv(_hours(10)))
    overlapping = read_ohlcv_csv(_hours(10, start=T0 + 5 * 3600))
    with pytest.raises(CandlesExist, match="5 of these candles are already stored"):
        async with unit_of_work(db) as uow:
            await import_candles(uow, "ETH-USD", "1h", overlapping)
    assert await _count(db, "ETH-USD") == 10

    async def import_then_fail() -> None:
        async with unit_of_work(db) as uow:
            await import_candles(uow, "ETH-USD", "1h", read_ohlcv_csv(_hours(3, T0 - 86400)))
            raise RuntimeError("the job failed after the import")

    # A failure later in the caller's transaction takes the whole import back with it.
    with pytest.raises(RuntimeError):
        await import_then_fail()
    assert await _count(db, "ETH-USD") == 10


@pytest.mark.parametrize(
    ("market", "interval", "match"),
    [
        ("BTC-USD", "2h", "unknown interval"),
        ("btc-usd", "1h", "not BASE-QUOTE"),
        ("BTC-USD", "1d", "off the 1d grid"),
    ],
)
async def test_import_refuses_what_cannot_be_stored(
    db: Database, market: str, interval: str, match: str
) -> None:
    with pytest.raises(CandlesRefused, match=match):
        async with unit_of_work(db) as uow:
            await import_candles(uow, market, interval, read_ohlcv_csv(_hours(3, T0 + 3600)))
    assert await _count(db) == 0


async def test_import_refuses_candles_that_contradict_themselves(db: Database) -> None:
    good = read_ohlcv_csv(_hours(3))
    high = good.high.copy()
    high[1] = good.low[1] - 1
    broken = Candles(good.time, good.open, high, good.low, good.close, good.volume)
    with pytest.raises(CandlesRefused, match=r"1 candles break .* the first at 2019-10-17T01:00"):
        async with unit_of_work(db) as uow:
            await import_candles(uow, "BTC-USD", "1h", broken)
    assert await _count(db) == 0


async def test_record_candle_upserts_the_feeds_candle(db: Database) -> None:
    async with unit_of_work(db) as uow:
        await import_candles(uow, "TON-USDT", "1h", read_ohlcv_csv(_hours(2)))
        await record_candle(uow, "TON-USDT", "1h", T0 + 7200, 5.0, 5.5, 4.9, 5.2, 100.0)
    async with unit_of_work(db) as uow:
        await record_candle(uow.session, "TON-USDT", "1h", T0 + 7200, 5.0, 5.6, 4.9, 5.5, 120.0)
        await record_candle(uow, "TON-USDT", "1h", T0, 1.0, 1.0, 1.0, 1.0, 0.0)
    async with db.sessions() as session:
        loaded = await load_candles(session, "TON-USDT", "1h")
    assert loaded.time.tolist() == [T0, T0 + 3600, T0 + 7200]
    assert loaded.close.tolist() == [1.0, 102.0, 5.5]
    assert loaded.volume.tolist() == [0.0, 1.0, 120.0]
    async with db.engine.connect() as connection:
        sources = (
            await connection.execute(text("SELECT source FROM signal_candles ORDER BY time"))
        ).scalars()
        assert list(sources) == ["feed", "import", "feed"]
    for bad in [(T0 + 60, 1, 2, 1, 1, 1), (T0, 1, 0.5, 1, 1, 1), (T0, 3, 2, 1, 1, 1)]:
        with pytest.raises(CandlesRefused):
            async with unit_of_work(db) as uow:
                await record_candle(uow, "TON-USDT", "1h", *bad)


async def test_the_table_itself_refuses_inconsistent_candles(db: Database) -> None:
    # market, interval, time, source, open, high, low, close, volume: high below low.
    insert = "INSERT INTO signal_candles VALUES ('BTC-USD', '1h', 0, 'import', 10, 8, 9, 9, 1)"
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as connection:
            await connection.execute(text(insert))


def _drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if "signal_candles" in repr(d)]


async def test_migration_matches_the_model_and_reverses(db: Database, tmp_path: Path) -> None:
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_drift) == []
    url = db.engine.url.render_as_string(hide_password=False)
    settings = make_settings(tmp_path, database={"url": url} if db.dialect != "sqlite" else {})
    await db.engine.dispose()
    await migrate.downgrade_async(settings, "0007")
    async with db.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert "signal_candles" not in tables
    await migrate.upgrade_async(settings)
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_drift) == []


# --- simplrefq signals import ------------------------------------------------------------------


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    """The environment that points the CLI at ``db`` (the ``db`` fixture's own settings)."""
    url = db.engine.url.render_as_string(hide_password=False)
    return {
        "APP_ENV": "test",
        "APP_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "" if db.dialect == "sqlite" else url,
        "REDIS_URL": "",
    }


async def _cli(db: Database, tmp_path: Path, *args: str) -> Result:
    # The command runs its own event loop (asyncio.run), so it goes to a thread.
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, main, ["signals", "import", *args], env=_env(db, tmp_path)
    )


async def test_cli_imports_a_good_file_whole(db: Database, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(_hours(48))
    result = await _cli(db, tmp_path, str(good), "--market", "BTC-USD", "--interval", "1h")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "imported 48 candles of BTC-USD 1h: 2019-10-17 00:00 UTC to 2019-10-18 23:00 UTC\n"
    )
    assert await _count(db, "BTC-USD") == 48
    again = await _cli(db, tmp_path, str(good), "--market", "BTC-USD", "--interval", "1h")
    assert again.exit_code == 1
    assert "48 of these candles are already stored" in again.stderr
    assert await _count(db, "BTC-USD") == 48


async def test_cli_imports_nothing_of_a_bad_file(db: Database, tmp_path: Path) -> None:
    rows = _hours(48).splitlines()
    rows[40] = rows[40].replace(",", ",x", 1)  # line 41: an unparsable open
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    result = await _cli(db, tmp_path, str(bad), "--market", "BTC-USD", "--interval", "1h")
    assert result.exit_code == 1
    assert result.stderr.startswith("line 41: unparsable number in open: 'x")
    assert result.stdout == ""
    assert await _count(db) == 0
    off_grid = tmp_path / "hours.csv"
    off_grid.write_text(_hours(5, start=T0 + 3600))
    result = await _cli(db, tmp_path, str(off_grid), "--market", "BTC-USD", "--interval", "1d")
    assert result.exit_code == 1
    assert "off the 1d grid" in result.stderr
    assert await _count(db) == 0


async def test_cli_needs_a_file_with_market_and_interval_or_bundled(
    db: Database, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(_hours(2))
    for args in [(), (str(good),), (str(good), "--market", "BTC-USD"), ("--bundled", str(good))]:
        result = await _cli(db, tmp_path, *args)
        assert result.exit_code == 2, (args, result.output)
    assert await _count(db) == 0


async def test_cli_seeds_the_bundled_history_once(db: Database, tmp_path: Path) -> None:
    result = await _cli(db, tmp_path, "--bundled")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "imported 20110 candles of BTC-USD 1h: 2017-07-01 11:00 UTC to 2019-10-17 08:00 UTC"
    )
    assert len(lines) == len(BUNDLED)
    total = sum(rows for rows, _first, _last in EXPECTED.values())
    assert await _count(db) == total
    async with db.sessions() as session:
        eth = await load_candles(session, "ETH-USD", "1d")
    assert np.array_equal(eth.close, load_bundled("eth_usd_1d").close)
    again = await _cli(db, tmp_path, "--bundled")
    assert again.exit_code == 1
    assert "already stored" in again.stderr
    assert await _count(db) == total
