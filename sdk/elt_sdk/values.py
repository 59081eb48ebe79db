"""JSON values -> silver values: what a valid record holds, within what silver types can hold.

JSON Schema has no integer width, no float range and no calendar limits; int64, float64 and
Arrow/Parquet timestamps do, and so do the Python and Parquet readers of silver. A value the
schema accepts but the silver type cannot hold is refused here, with a reason that names the
field and the limit, on every path (the columnar path hands such rows to this one):

- ``integer``: beyond int64 (-2^63 .. 2^63-1); an integral float (``3.0``, ``1e2``) is stored as
  the integer it is.
- ``number``: beyond float64 (±1.7976931348623157e308, e.g. ``1e400``, or a 400-digit integer);
  integers are stored as the nearest float64, like any decimal number; ``-0.0`` stays ``-0.0``.
- ``string`` (and JSON text): a lone surrogate (``"\\ud800"``), which UTF-8 cannot store.
- ``date-time``: RFC 3339, stored in UTC to the microsecond (further digits are cut, not
  rounded); outside years 1-9999 once in UTC (``0000-01-01T00:00:00Z``,
  ``9999-12-31T23:59:59-01:00``) it is refused. A leap second (second 60, valid only at 23:59:60
  UTC) is stored as 23:59:59.999999 of the same UTC day: silver timestamps have no second 60.
- ``date``: outside years 1-9999.

Functions are compiled once per shape (``converter``), so the per-record cost is a few calls.
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Callable

from elt_sdk.schema import Shape

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT64_MAX = 1.7976931348623157e308
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
US_PER_DAY = 86_400_000_000
MIN_US = (date(1, 1, 1).toordinal() - EPOCH_ORDINAL) * US_PER_DAY
MAX_US = (date(9999, 12, 31).toordinal() - EPOCH_ORDINAL + 1) * US_PER_DAY - 1
MIN_DAYS, MAX_DAYS = date(1, 1, 1).toordinal() - EPOCH_ORDINAL, date(9999, 12, 31).toordinal() - EPOCH_ORDINAL

# RFC 3339 (JSON Schema's date-time, date and time formats), ASCII digits only
DATE_TIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
                          r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z")
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z")
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class ValueIssue(ValueError):
    """A valid JSON value the silver type cannot hold; ``path`` names the field."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


class OutOfRange(float):
    """A JSON number beyond float64, as the strict decoder reads it: ±inf that remembers its
    text, so validation can tell an integer (``1e400``) and a reason can quote it."""

    text: str

    def __new__(cls, text: str) -> "OutOfRange":
        self = super().__new__(cls, float(text))
        self.text = text
        return self

    def is_integer(self) -> bool:  # JSON Schema: an integer is a number with a zero fractional part
        return Fraction(self.text).denominator == 1

    def __repr__(self) -> str:
        return self.text


def parse_float(text: str) -> float:
    """The strict decoder's float: a float64, or ``OutOfRange`` where the text is beyond it."""
    value = float(text)
    return OutOfRange(text) if math.isinf(value) else value


# -- RFC 3339 ------------------------------------------------------------------------------------

def _leap_year(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _valid_date(y: int, m: int, d: int) -> bool:
    return 1 <= m <= 12 and 1 <= d <= (29 if m == 2 and _leap_year(y) else _DAYS_IN_MONTH[m - 1])


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar, for any year (0 included)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _time_ok(h: int, mi: int, s: int, sign: str | None, oh: int, om: int) -> bool:
    """RFC 3339 time: second 60 only where the time is 23:59 in UTC (a leap second)."""
    if h > 23 or mi > 59 or s > 60 or oh > 23 or om > 59:
        return False
    if s == 60:
        offset = 0 if sign is None else (oh * 60 + om) * (1 if sign == "+" else -1)
        return (h * 60 + mi - offset) % 1440 == 23 * 60 + 59
    return True


# the RFC 3339 structure; datetime.fromisoformat then checks the calendar (fast, in C) and what
# it refuses (a leap second, year 0, a day that does not exist) is decided by the exact code below
_DATE_TIME_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)"
                             r"(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def _fromisoformat(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text if text.isupper() or not (text[10] == "t" or text[-1] == "z") else text.upper())
    except ValueError:
        return None


def is_date_time(text: str) -> bool:
    """JSON Schema's ``date-time`` format (RFC 3339 ``date-time``)."""
    if not isinstance(text, str) or not _DATE_TIME_FORM.match(text):
        return False
    return _fromisoformat(text) is not None or _is_date_time_exact(text)


def _is_date_time_exact(text: str) -> bool:
    m = DATE_TIME_RE.match(text)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    oh, om = (int(m.group(10)), int(m.group(11))) if m.group(9) else (0, 0)
    return _valid_date(y, mo, d) and _time_ok(h, mi, s, m.group(9), oh, om)


def is_date(text: str) -> bool:
    """JSON Schema's ``date`` format (RFC 3339 ``full-date``)."""
    m = DATE_RE.match(text)
    return bool(m) and _valid_date(*(int(g) for g in m.groups()))


def is_time(text: str) -> bool:
    """JSON Schema's ``time`` format (RFC 3339 ``full-time``: an offset is required)."""
    m = TIME_RE.match(text)
    if not m:
        return False
    h, mi, s = (int(g) for g in m.groups()[:3])
    oh, om = (int(m.group(7)), int(m.group(8))) if m.group(6) else (0, 0)
    return _time_ok(h, mi, s, m.group(6), oh, om)


def timestamp_us(text: str) -> int | None:
    """Microseconds since the epoch (UTC) of an RFC 3339 date-time; None if it is not one. Digits
    past the sixth of a fraction are cut; a leap second becomes 23:59:59.999999. The result may lie
    outside years 1-9999: the caller checks."""
    if not is_date_time(text):
        return None
    parsed = _fromisoformat(text)
    if parsed is not None:  # digits past the sixth are cut by fromisoformat too
        return (parsed - _EPOCH) // _ONE_US
    m = DATE_TIME_RE.match(text)
    assert m
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = int((m.group(7) or ".")[1:7].ljust(6, "0"))
    offset = 0
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * (1 if m.group(9) == "+" else -1)
    if s == 60:
        s, frac = 59, 999_999
    seconds = _days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset * 60
    return seconds * 1_000_000 + frac


def date_days(text: str) -> int | None:
    """Days since the epoch of an RFC 3339 full-date; None if it is not one."""
    if not is_date(text):
        return None
    y, mo, d = (int(g) for g in DATE_RE.match(text).groups())  # type: ignore[union-attr]
    return _days_from_civil(y, mo, d)


# -- conversion ----------------------------------------------------------------------------------

Converter = Callable[[Any, str], Any]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(value: Any, path: str) -> Any:
    if value is None or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueIssue(path, f"the string holds a lone surrogate (U+{ord(value[exc.start]):04X}), "
                               "which UTF-8 cannot store") from None
    return value


def _integer(value: Any, path: str) -> Any:
    if value is None or type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    if isinstance(value, float):
        if isinstance(value, OutOfRange) or not value.is_integer():
            raise ValueIssue(path, f"{_describe(value)} is beyond int64, the silver type "
                                   f"({INT64_MIN} to {INT64_MAX})")
        value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueIssue(path, f"{_describe(value)} is beyond int64, the silver type ({INT64_MIN} to {INT64_MAX})")
    return value


def _number(value: Any, path: str) -> Any:
    if value is None:
        return None
    if type(value) is float and -FLOAT64_MAX <= value <= FLOAT64_MAX:
        return value
    try:
        converted = float(value)
    except OverflowError:
        converted = math.inf
    if math.isinf(converted):
        raise ValueIssue(path, f"{_describe(value)} is beyond float64, the silver type (±{FLOAT64_MAX!r})")
    return converted


def _timestamp(value: Any, path: str) -> Any:
    if value is None:
        return None
    parsed = _fromisoformat(value)  # validation has checked the form; this is the fast common case
    us = (parsed - _EPOCH) // _ONE_US if parsed is not None else timestamp_us(value)
    if us is None:
        raise ValueIssue(path, f"{_describe(value)} is not an RFC 3339 date-time")
    if not MIN_US <= us <= MAX_US:
        raise ValueIssue(path, f"{_describe(value)} is outside the years 1-9999 (in UTC) that silver timestamps hold")
    return us


def _date(value: Any, path: str) -> Any:
    if value is None:
        return None
    days = date_days(value)
    if days is None:
        raise ValueIssue(path, f"{_describe(value)} is not an RFC 3339 date")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueIssue(path, f"{_describe(value)} is outside the years 1-9999 that silver dates hold")
    return days


def _plain(value: Any, path: str) -> Any:
    return value


def json_text(value: Any) -> str:
    """The JSON text a free-form value is stored as: compact, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json(value: Any, path: str) -> Any:
    if value is None:
        return None
    try:
        text = json_text(value)
    except ValueError:
        raise ValueIssue(path, f"holds a number beyond float64 (±{FLOAT64_MAX!r})") from None
    except RecursionError:
        raise ValueIssue(path, "is nested too deeply to store as JSON text") from None
    return _string(text, path)


_SCALARS: dict[str, Converter] = {"string": _string, "integer": _integer, "number": _number, "boolean": _plain,
                                  "timestamp": _timestamp, "date": _date, "json": _json}


def converter(shape: Shape) -> Converter:
    """``fn(value, path) -> silver value`` for a value valid at ``shape``; raises ValueIssue where
    the silver type cannot hold it. Timestamps become microseconds and dates days since the epoch
    (what Arrow builds timestamp and date32 arrays from)."""
    if shape.kind in _SCALARS:
        return _SCALARS[shape.kind]
    if shape.kind == "list":
        assert shape.item is not None
        item = converter(shape.item)

        def convert_list(value: Any, path: str) -> Any:
            if value is None:
                return None
            return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

        return convert_list
    fields = [(f.name, converter(f.shape)) for f in shape.fields]

    def convert_struct(value: Any, path: str) -> Any:
        if value is None:
            return None
        get = value.get
        return {name: fn(get(name), f"{path}.{name}") for name, fn in fields}

    return convert_struct


def record_converter(shape: Shape) -> Callable[[dict], tuple]:
    """``fn(record) -> tuple of column values`` for a valid record (top-level fields in order).
    Generated as one function per dataset: this runs once per record on the record path."""
    env: dict[str, Any] = {"_string": _string}
    items = []
    for i, f in enumerate(shape.fields):
        env[f"c{i}"] = converter(f.shape)
        get, path = f"get({f.name!r})", repr(f"$.{f.name}")
        if f.shape.kind in ("string", "boolean"):  # the common case without a call
            check = "" if f.shape.kind == "boolean" else f" if v{i} is None or v{i}.isascii() else _string(v{i}, {path})"
            items.append((f"v{i} = {get}", f"v{i}{check}"))
        else:
            items.append((f"v{i} = {get}", f"c{i}(v{i}, {path})"))
    body = "".join(f"    {assign}\n" for assign, _ in items)
    source = f"def convert(record):\n    get = record.get\n{body}    return ({', '.join(e for _, e in items)},)\n"
    exec(source, env)  # noqa: S102 - generated from the dataset's field names, quoted with repr
    return env["convert"]
