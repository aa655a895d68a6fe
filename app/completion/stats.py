"""Latency and use of completion at the cursor, since the app started; saved in the data
folder so that `llamadesk doctor` can print the last run's figures."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from app import paths

FILE = "completion_stats.json"
KEEP = 500  # latencies kept for the percentiles


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class CompletionStats:
    started: float = field(default_factory=time.time)
    latencies_s: list[float] = field(default_factory=list)  # engine requests: keystroke -> ghost
    shown: int = 0          # suggestions shown (engine, cache or type-through)
    accepted: int = 0       # of which accepted (all, or part with Ctrl+Right / Ctrl+Down)
    cache_hits: int = 0     # served from the suggestion cache
    type_through: int = 0   # kept while the user typed its first characters
    requests: int = 0       # sent to the engine
    cancelled: int = 0
    model: str = ""

    def request_done(self, latency_s: float) -> None:
        self.latencies_s.append(round(latency_s, 4))
        del self.latencies_s[:-KEEP]

    @property
    def p50(self) -> float:
        return percentile(self.latencies_s, 0.5)

    @property
    def p90(self) -> float:
        return percentile(self.latencies_s, 0.9)

    @property
    def last_s(self) -> float | None:
        return self.latencies_s[-1] if self.latencies_s else None

    @property
    def accepted_share(self) -> float:
        return self.accepted / self.shown if self.shown else 0.0

    def recent_median(self, n: int = 10) -> float:
        return percentile(self.latencies_s[-n:], 0.5)

    def summary(self) -> str:
        if not self.requests and not self.shown:
            return "no suggestions yet"
        return (f"p50 {self.p50 * 1000:.0f} ms, p90 {self.p90 * 1000:.0f} ms over "
                f"{len(self.latencies_s)} requests; {self.shown} shown, "
                f"{self.accepted_share:.0%} accepted; {self.cache_hits} cache hits, "
                f"{self.type_through} typed through" + (f" ({self.model})" if self.model else ""))

    # --- the data folder -----------------------------------------------------------------
    def save(self) -> None:
        path = paths.ensure(paths.data_dir()) / FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load_last(cls) -> "CompletionStats | None":
        try:
            data = json.loads((paths.data_dir() / FILE).read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return None
