"""RFC 3339 date-times as silver stores them: the record path's arithmetic against Python's
datetime and against Arrow's cast (the columnar path), over random instants, offsets and
fraction lengths."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from elt_sdk.defaults.columnar import STRICT_DATE_TIME
from elt_sdk.values import MAX_US, MIN_US, is_date, is_date_time, timestamp_us

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59)


@st.composite
def rfc3339(draw) -> tuple[str, int]:
    """A date-time string and its microseconds since the epoch, computed with datetime."""
    local = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    offset = draw(OFFSETS)
    digits = draw(st.integers(0, 9))
    extra = draw(st.integers(0, 999))
    frac = f"{local.microsecond:06d}{extra:03d}"[:digits]
    sign = "+" if offset >= 0 else "-"
    zone = draw(st.sampled_from(["Z", "z"])) if offset == 0 and draw(st.booleans()) else \
        f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    text = f"{local.year:04d}-{local.month:02d}-{local.day:02d}" + draw(st.sampled_from("Tt")) + local.strftime("%H:%M:%S") + \
        (f".{frac}" if digits else "") + zone
    micros = int(frac.ljust(6, "0")[:6]) if digits else 0
    moment = local.replace(microsecond=micros, tzinfo=timezone(timedelta(minutes=offset)))
    return text, (moment - EPOCH) // timedelta(microseconds=1)


@settings(max_examples=500, deadline=None)
@given(case=rfc3339())
def test_timestamps_are_utc_microseconds_cut_not_rounded(case):
    text, expected = case
    assert is_date_time(text)
    assert timestamp_us(text) == expected
    arrow_form = pa.array([text])
    if pc.match_substring_regex(arrow_form, STRICT_DATE_TIME)[0].as_py():  # what the columnar path casts
        cast = pc.cast(arrow_form, pa.timestamp("us", tz="UTC"))
        assert cast.cast(pa.int64())[0].as_py() == expected


def test_leap_seconds_and_the_edges_of_the_calendar():
    assert timestamp_us("2016-12-31T23:59:60Z") == timestamp_us("2016-12-31T23:59:59.999999Z")
    assert timestamp_us("2016-12-31T18:59:60.9-05:00") == timestamp_us("2016-12-31T23:59:59.999999Z")
    assert not is_date_time("2016-12-31T23:58:60Z") and not is_date_time("2016-12-31T23:59:61Z")
    assert timestamp_us("0001-01-01T00:00:00Z") == MIN_US
    assert timestamp_us("9999-12-31T23:59:59.999999Z") == MAX_US
    assert timestamp_us("0001-01-01T00:00:00+00:01") < MIN_US  # valid RFC 3339, before year 1 in UTC
    assert timestamp_us("9999-12-31T23:59:59-00:01") > MAX_US
    assert timestamp_us("0000-02-29T12:00:00Z") < MIN_US  # year 0 is a leap year (proleptic Gregorian)
    assert not is_date_time("0001-02-29T12:00:00Z")
    assert [is_date(d) for d in ("2000-02-29", "1900-02-29", "2024-04-31", "0000-02-29")] == [True, False, False, True]
