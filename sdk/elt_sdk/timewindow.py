"""Time windows as operators write them: ``--since 2026-01-01T00:00:00Z``, ``--since 2026-01-01``,
``--last 6h`` (``s``, ``m``, ``h``, ``d``, ``w``; ``1h30m`` too). Times without a zone are UTC."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``6h``, ``2d``, ``1h30m``, ``90`` (seconds)."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = _PART.findall(t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 6h, 2d, 1h30m)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time or date (UTC unless it says otherwise), or ``now``."""
    t = text.strip()
    if t.lower() == "now":
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (e.g. 2026-01-01, 2026-01-01T06:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def window(since: str | None = None, until: str | None = None, last: str | None = None,
           now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` from ``--since``/``--until`` or ``--last``; exactly one of since or last."""
    now = now or datetime.now(timezone.utc)
    if (since is None) == (last is None):
        raise ValueError("give either --since TIME (with --until TIME, optionally) or --last DURATION")
    if last is not None:
        if until is not None:
            raise ValueError("--until goes with --since, not --last")
        return now - timedelta(seconds=parse_duration(last)), now
    start = parse_time(since)  # type: ignore[arg-type]
    end = parse_time(until) if until else now
    if end <= start:
        raise ValueError(f"the window is empty: --until {end.isoformat()} is not after --since {start.isoformat()}")
    return start, end
