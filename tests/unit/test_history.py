"""Reading bars and trades files: column names, times, and the rows refused with a reason."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from ticklake.history import Converter, ImportOptions, RowError, column_map, parse_time
from ticklake.errors import UserError

UTC = ZoneInfo("UTC")


def test_default_column_names_in_any_case_and_a_mapping_for_the_rest():
    columns = ["Date", "Open", "High", "Low", "Last", "Volume"]
    assert column_map("bars", columns, {"close": "Last"}, symbol="AAPL") == {
        "close": "Last", "window_start": "Date", "open": "Open", "high": "High", "low": "Low", "volume": "Volume"}


@pytest.mark.parametrize("columns, mapping, symbol, message", [
    (["Date", "Open", "High", "Low", "Volume"], {}, "AAPL", "no column for close: it has Date, Open"),
    (["time", "open", "high", "low", "close", "volume"], {}, None, "no column for symbol (or give --symbol)"),
    (["t", "p", "v"], {"price": "Price"}, "X", "--map names columns the file does not have: Price"),
    (["t", "p", "v"], {"colour": "p"}, "X", "--map colour: trades have the fields symbol, trade_ts"),
])
def test_missing_columns_are_named(columns, mapping, symbol, message):
    what = "trades" if "p" in columns else "bars"
    with pytest.raises(UserError, match=re.escape(message)):
        column_map(what, columns, mapping, symbol)


@pytest.mark.parametrize("value, unit, zone, expected", [
    ("2026-11-23T09:30", "iso", "UTC", datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)),
    ("2026-11-23 09:30:00", "iso", "America/New_York", datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)),
    ("2026-11-23T09:30:00+01:00", "iso", "America/New_York", datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)),
    ("1795426200", "s", "UTC", datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)),
    (1795426200123, "ms", "UTC", datetime(2026, 11, 23, 9, 30, 0, 123000, tzinfo=timezone.utc)),
    ("1795426200123456", "us", "UTC", datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=timezone.utc)),
    (1795426200123456000, "ns", "UTC", datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=timezone.utc)),
])
def test_times_in_a_zone_and_a_unit(value, unit, zone, expected):
    assert parse_time(value, unit, ZoneInfo(zone)) == expected


@pytest.mark.parametrize("value, unit, message", [
    ("1795426200", "iso", "not an ISO time; it looks like a number: give --time-unit"),
    ("yesterday", "ms", "not a number of ms since 1970"),
    ("-5", "s", "out of range"), ("", "iso", "no time"),
])
def test_bad_times_say_why(value, unit, message):
    with pytest.raises(RowError, match=message):
        parse_time(value, unit, UTC)


def converter(settings, what: str, **options) -> Converter:
    columns = {"bars": ["symbol", "time", "open", "high", "low", "close", "volume"],
               "trades": ["symbol", "time", "price", "volume"]}[what]
    opts = ImportOptions(what, None, **options)
    return Converter(settings, opts, column_map(what, columns, {}, opts.symbol))


BAR = {"symbol": "AAPL", "time": "2026-11-23T09:30", "open": "10", "high": "11", "low": "9.5", "close": "10.5",
       "volume": "100"}


def test_a_valid_bar(settings):
    bar = converter(settings, "bars")(BAR, 1)
    assert bar["window_end"] == datetime(2026, 11, 23, 9, 31, tzinfo=timezone.utc)
    assert (bar["open"], bar["close"], bar["trade_count"], bar["vwap"]) == (10.0, 10.5, 0, None)


@pytest.mark.parametrize("change, message", [
    ({"high": "9.9"}, "open 10 and close 10.5 must lie within low 9.5 and high 9.9"),
    ({"open": "-1"}, "open: Input should be greater than 0"),
    ({"volume": "-3"}, "volume: Input should be greater than or equal to 0"),
    ({"close": "ten"}, "close 'ten' is not a number"),
    ({"close": ""}, "close: Input should be a valid number"),
    ({"symbol": ""}, "symbol: String should have at least 1 character"),
    ({"time": "2026-11-23T09:30:30"}, "is not at the start of a 0:01:00 bar"),
    ({"open": "nan"}, "open: Input should be a finite number"),
])
def test_bad_bars_say_why(settings, change, message):
    with pytest.raises(RowError, match=f"{re.escape(message)}$"):
        converter(settings, "bars")(BAR | change, 1)


def test_bars_of_a_longer_timeframe_start_on_its_boundaries(settings):
    with pytest.raises(RowError, match="not at the start of a 1:00:00 bar"):
        converter(settings, "bars", timeframe="1h")(BAR, 1)
    assert converter(settings, "bars", timeframe="1h")(BAR | {"time": "2026-11-23T09:00"}, 1)["window_end"].hour == 10


def test_trades_are_checked_as_the_producer_checks_them(settings):
    convert = converter(settings, "trades")
    trade = convert({"symbol": "AAPL", "time": "2026-11-23T09:30:00.5", "price": "129.5", "volume": "0"}, 7)
    assert (trade["kafka_partition"], trade["kafka_offset"], trade["exchange"]) == (-1, 7, "US")
    for bad, message in [({"price": "0"}, "price: Input should be greater than 0"),
                         ({"symbol": " "}, "symbol: String should have at least 1 character")]:
        with pytest.raises(RowError, match=message):
            convert({"symbol": "AAPL", "time": "2026-11-23T09:30", "price": "1", "volume": "1"} | bad, 1)
