"""Training-set readers for the contamination check: each input is cut into units (a file, or a
newline-aligned byte range of a large JSONL file), and a unit is scanned in bounded memory.

JSONL takes a fast path: a chunk of raw lines goes through the filter of decontam_filter.py,
and only the lines it lets through are parsed and checked exactly (a malformed one among them is
reported and skipped). `--validate-json` parses every line, to report every malformed one.
"""
from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from app.bench.decontam import Matcher, normalise

try:  # lines are parsed (all of them with --validate-json); orjson does it 2.6x faster
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency, but stay usable without it
    _fast_loads = json.loads


def _loads(line: bytes):
    try:
        return _fast_loads(line)
    except ValueError:
        return json.loads(line)  # what orjson refuses but Python accepts (NaN, big ints)

_MALFORMED = object()   # not None: a JSONL line may hold `null`
CHUNK = 8 * 2**20
UNIT = 16 * 2**20
MAX_MALFORMED_LISTED = 100
KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
         ".parquet": "parquet"}


class InputError(Exception):
    """An input that cannot be read: one line for the user."""


class Cancelled(Exception):
    pass


@dataclass
class Unit:
    path: str
    kind: str
    compressed: str | None
    start: int = 0
    end: int = -1     # -1: to the end of the file
    order: int = 0


@dataclass
class UnitResult:
    order: int
    path: str
    bytes: int = 0
    records: int = 0
    malformed: list = field(default_factory=list)      # (byte offset, message)
    matches: dict = field(default_factory=dict)         # task index -> where
    found: dict = field(default_factory=dict)           # task index -> window indexes
    skipped: str | None = None
    long_records: list = field(default_factory=list)   # (byte offset, note): scanned as raw text
    fields_seen: set = field(default_factory=set)       # which of the asked-for fields occurred


def kind_of(path: Path) -> tuple[str, str | None]:
    name = path.name.lower()
    compressed = None
    for ext, comp in ((".gz", "gz"), (".bz2", "bz2")):
        if name.endswith(ext):
            compressed, name = comp, name[: -len(ext)]
    return KINDS.get(os.path.splitext(name)[1], "text"), compressed


def plan_units(paths: list[str]) -> tuple[list[Unit], int]:
    """Units for every input file (folders walked in sorted order), and their total bytes."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"input not found: {raw}")
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs.sort()
                files.extend(Path(root) / n for n in sorted(names))
        else:
            files.append(p)
    units, total = [], 0
    for f in files:
        try:
            st = f.stat()
            if not stat.S_ISREG(st.st_mode):
                # A FIFO would block the open (and the scan) forever; a device may never end.
                units.append(Unit(str(f), "special", None))
                continue
            size = st.st_size
            with open(f, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"cannot read {f}: {exc.strerror or exc}") from None
        total += size
        kind, comp = kind_of(f)
        if kind == "jsonl" and comp is None and size > UNIT:
            units.extend(_split_lines(f, size))
        else:
            units.append(Unit(str(f), kind, comp))
    for i, u in enumerate(units):
        u.order = i
    return units, total


def _split_lines(path: Path, size: int) -> list[Unit]:
    cuts = [0]
    with open(path, "rb") as fh:
        while cuts[-1] + UNIT < size:
            fh.seek(cuts[-1] + UNIT)
            _skip_line(fh)  # in blocks: one line may be gigabytes long
            if fh.tell() >= size:
                break
            cuts.append(fh.tell())
    ends = cuts[1:] + [size]
    return [Unit(str(path), "jsonl", None, s, e) for s, e in zip(cuts, ends)]


def _skip_line(fh, limit: int = -1) -> int:
    """Read past the next newline (or to EOF, or `limit` bytes) in bounded blocks; bytes read."""
    n = 0
    while limit < 0 or n < limit:
        want = 2**20 if limit < 0 else min(2**20, limit - n)
        block = fh.readline(want)
        n += len(block)
        if not block or block.endswith(b"\n"):
            break
    return n


_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _unescape_json(text: str) -> str:
    """JSON string escapes of raw JSON text undone (for normalising a record too long to parse)."""
    if "\\" not in text:
        return text
    if "\\\\" not in text and "\\u" not in text:  # no escape can hide another: plain replaces
        for esc, char in _ESCAPES.items():
            text = text.replace("\\" + esc, char)
        return text.replace('\\"', '"').replace("\\/", "/")
    return _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1)
                            else _ESCAPES.get(m.group(2), m.group(2)), text)


def _open_binary(unit: Unit):
    if unit.compressed == "gz":
        return gzip.open(unit.path, "rb")
    if unit.compressed == "bz2":
        return bz2.open(unit.path, "rb")
    return open(unit.path, "rb")


def walk_strings(obj, fields: list[str] | None, prefix: str = ""):
    """(field path, text) for every string in a record; `fields` picks top-level keys."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not prefix and fields is not None and key not in fields:
                continue
            yield from walk_strings(value, None, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from walk_strings(value, None, f"{prefix}[{i}]")
    elif isinstance(obj, str) and (fields is None or prefix):
        yield prefix or "text", obj


class UnitScanner:
    def __init__(self, matcher: Matcher, cancel=None, progress=None):
        self.m = matcher
        self.casefold = matcher.s.casefold
        self.fields = matcher.s.fields
        self.max_record = max(1, int(matcher.s.max_record_mb * 2**20))
        self.cancel = cancel
        self.progress = progress   # called with bytes read since the last call
        self.validate = matcher.s.validate_json   # parse every JSONL line: report every malformed one

    def _tick(self, n: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.progress:
            self.progress(n)

    def scan(self, unit: Unit) -> UnitResult:
        res = UnitResult(unit.order, unit.path)
        for t in self.m.tasks:   # a scanner's matcher state is per unit
            t.match, t.found = None, set()
        try:
            getattr(self, f"_scan_{unit.kind}")(unit, res)
        except (OSError, EOFError, UnicodeError, csv.Error, zlib.error) as exc:
            # zlib.error: a gzip header followed by garbage
            raise InputError(f"cannot read {unit.path}: {' '.join(str(exc).split())}") from None
        for k, t in enumerate(self.m.tasks):
            if t.match is not None:
                res.matches[k] = t.match
            if t.found:
                res.found[k] = set(t.found)
        return res

    def _scan_special(self, unit: Unit, res: UnitResult) -> None:
        res.skipped = "not a regular file (a FIFO, device or socket): not read"

    def _see_fields(self, obj, res: UnitResult) -> None:
        if self.fields is not None and isinstance(obj, dict):
            res.fields_seen.update(f for f in self.fields if f in obj)

    def _record(self, obj, where: dict, res: UnitResult | None = None) -> None:
        if res is not None:
            self._see_fields(obj, res)
        for name, text in walk_strings(obj, self.fields):
            norm = normalise(text, self.casefold)
            if self.m.blocks_hit(norm):
                self.m.check_field(norm, {**where, "field": name})

    # --- JSONL -------------------------------------------------------------------------------
    def _scan_jsonl(self, unit: Unit, res: UnitResult) -> None:
        with _open_binary(unit) as fh:
            if unit.start:
                fh.seek(unit.start)
            pos = unit.start
            end = unit.end
            while True:
                want = CHUNK if end < 0 else min(CHUNK, end - pos)
                if want <= 0:
                    break
                data = fh.read(want)
                if not data:
                    break
                if not data.endswith(b"\n") and (end < 0 or pos + len(data) < end):
                    cut = data.rfind(b"\n") + 1
                    data += fh.readline(max(0, self.max_record - (len(data) - cut)) + 1)
                    if not data.endswith(b"\n") and len(data) - cut > self.max_record:
                        # A record over the limit: the lines before it as usual, then the record
                        # itself as raw text in windows, never whole in memory.
                        if cut:
                            self._jsonl_chunk(data[:cut], pos, unit, res)
                        first, size = data[cut:], len(data)
                        del data
                        size += self._raw_record(fh, first, pos + cut, unit, res, stop_at_newline=True)
                        del first
                        res.bytes += size
                        pos += size
                        self._tick(size if unit.compressed is None else 0)
                        continue
                self._jsonl_chunk(data, pos, unit, res)
                res.bytes += len(data)
                pos += len(data)
                self._tick(len(data) if unit.compressed is None else 0)
            if unit.compressed:
                self._tick(os.path.getsize(unit.path))

    def _jsonl_chunk(self, data: bytes, base: int, unit: Unit, res: UnitResult) -> None:
        found = None
        if not self.validate and self.fields is None and self.max_record >= len(data):
            found = self.m.lines.lines(data)
        if found is None:
            return self._jsonl_chunk_parsed(data, base, unit, res)
        # Only the lines the filter lets through are parsed: the others cannot hold a match.
        count, hits = found
        res.records += count
        line_no, offset = 0, 0
        for want in sorted(hits):
            while line_no < want:
                offset = data.index(b"\n", offset) + 1
                line_no += 1
            end = data.find(b"\n", offset)
            line = data[offset:end if end >= 0 else len(data)]
            if not line.strip():
                continue
            obj = self._parse(line, base + offset, res)
            if obj is _MALFORMED:
                res.records -= 1
            else:
                self._record(obj, {"file": unit.path, "offset": base + offset})

    @staticmethod
    def _parse(line: bytes, offset: int, res: UnitResult):
        """The record on a JSONL line, or _MALFORMED (then reported in `res`)."""
        try:
            return _loads(line)
        except ValueError as exc:
            res.malformed.append((offset, str(exc).split(":")[0]))
            return _MALFORMED

    def _jsonl_chunk_parsed(self, data: bytes, base: int, unit: Unit, res: UnitResult) -> None:
        """Every line parsed (malformed ones reported), then filtered as above."""
        lines = data.split(b"\n")
        records, offset = {}, base
        for i, line in enumerate(lines):
            if len(line) > self.max_record:  # only when the limit is below the chunk size
                self._raw_record(io.BytesIO(), line, offset, unit, res, stop_at_newline=True)
            elif line.strip():
                obj = self._parse(line, offset, res)
                if obj is not _MALFORMED:
                    records[i] = (offset, obj)
            offset += len(line) + 1
        res.records += len(records)
        if self.fields is not None:
            for _, obj in records.values():
                self._see_fields(obj, res)
        slow: set[int] = set()
        found = self.m.lines.lines(data)
        if found is None:  # lines that are not plain ASCII become blank for the filter and are checked exactly
            slow = {i for i in records if not lines[i].isascii() or b"\\u" in lines[i]}
            found = self.m.lines.lines(b"\n".join(b"" if i in slow else line for i, line in enumerate(lines)),
                                       plain=True)
        for i in sorted(i for i in slow | found[1] if i in records):
            off, obj = records[i]
            self._record(obj, {"file": unit.path, "offset": off})

    def _raw_record(self, fh, first: bytes, offset: int, unit: Unit, res: UnitResult,
                    stop_at_newline: bool) -> int:
        """Scan one over-long record as raw JSON text, CHUNK bytes at a time: escapes undone,
        normalised, windows overlapping by one substring. Returns the bytes read from `fh`
        (`first` excluded); the record's newline, if any, is consumed but not scanned."""
        keep = self.m.s.length - 1
        carry, pending, n = "", "", 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        where = {"file": unit.path, "offset": offset, "field": "(raw record)"}
        # readline stops at the record's end, so nothing of the next record is read here
        read = (lambda: fh.readline(CHUNK)) if stop_at_newline else (lambda: fh.read(CHUNK))
        head = memoryview(first)
        data, head, last = bytes(head[:CHUNK]), head[CHUNK:], False
        while True:
            if stop_at_newline and data.endswith(b"\n"):
                data, last = data[:-1], True
            text = pending + decoder.decode(data, final=last or not data)
            # An escape cut at the window's edge waits for the next window.
            tail = text.rfind("\\", max(0, len(text) - 6))
            text, pending = (text[:tail], text[tail:]) if tail >= 0 and not (last or not data) else (text, "")
            norm = carry + normalise(_unescape_json(text), self.casefold)
            if norm and self.m.blocks_hit(norm):
                self.m.check_field(norm, where)
            carry = norm[-keep:] if keep else ""
            if last or not data:
                break
            self._tick(0)
            if head:  # what the caller had read already, a window at a time
                data, head = bytes(head[:CHUNK]), head[CHUNK:]
            else:
                data = read()
                n += len(data)
        res.records += 1
        res.long_records.append((offset, f"a record over {self.m.s.max_record_mb} MB, scanned as "
                                         f"raw text (fields not told apart)"))
        return n

    # --- JSON, CSV, Parquet ----------------------------------------------------------------
    def _scan_json(self, unit: Unit, res: UnitResult) -> None:
        with _open_binary(unit) as fh:
            raw = fh.read(self.max_record + 1)
            if len(raw) > self.max_record:
                res.bytes = len(raw) + self._raw_record(fh, raw, 0, unit, res, stop_at_newline=False)
                self._tick(os.path.getsize(unit.path))
                return
        res.bytes = len(raw)
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            res.malformed.append((0, f"not valid JSON: {exc}"))
            return
        records = doc if isinstance(doc, list) else [doc]
        res.records = len(records)
        for i, rec in enumerate(records, 1):
            self._record(rec, {"file": unit.path, "record": i}, res)
        self._tick(os.path.getsize(unit.path))

    def _scan_csv(self, unit: Unit, res: UnitResult) -> None:
        with io.TextIOWrapper(_open_binary(unit), encoding="utf-8", errors="replace", newline="") as fh:
            dialect = "excel-tab" if unit.path.lower().replace(".gz", "").endswith(".tsv") else "excel"
            # The limit bounds memory too: the csv module holds a whole field while reading it.
            csv.field_size_limit(self.max_record)
            rows = enumerate(csv.DictReader(fh, dialect=dialect), 1)
            while True:
                try:
                    i, row = next(rows)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if "field limit" not in str(exc):
                        raise
                    res.skipped = (f"a field over {self.m.s.max_record_mb} MB after record {res.records}: "
                                   f"the rest of the file was not scanned")
                    break
                self._record({k: v for k, v in row.items() if isinstance(k, str)},
                             {"file": unit.path, "record": i}, res)
                res.records += 1
                if i % 10000 == 0:
                    self._tick(0)
        res.bytes = os.path.getsize(unit.path)
        self._tick(res.bytes)

    def _scan_parquet(self, unit: Unit, res: UnitResult) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            res.skipped = "Parquet needs pyarrow (pip install pyarrow)"
            return
        n = 0
        for batch in pq.ParquetFile(unit.path).iter_batches(batch_size=2048):
            for rec in batch.to_pylist():
                n += 1
                self._record(rec, {"file": unit.path, "record": n}, res)
            self._tick(0)
        res.records = n
        res.bytes = os.path.getsize(unit.path)
        self._tick(res.bytes)

    # --- text and source files: the whole file is one example ----------------------------
    def _scan_text(self, unit: Unit, res: UnitResult) -> None:
        keep = self.m.s.length - 1  # carried over so that no window is lost at a chunk edge
        carry = ""
        with _open_binary(unit) as fh:
            head = fh.read(8192)
            if b"\0" in head:
                res.skipped = "binary file"
                return
            import codecs

            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            data = head
            while True:
                norm = carry + normalise(decoder.decode(data, final=not data), self.casefold)
                if norm and self.m.blocks_hit(norm):
                    self.m.check_field(norm, {"file": unit.path, "record": 1, "field": "text"})
                carry = norm[-keep:] if keep else ""
                res.bytes += len(data)
                self._tick(len(data) if unit.compressed is None else 0)
                if not data:
                    break
                data = fh.read(CHUNK)
        if unit.compressed:
            self._tick(os.path.getsize(unit.path))
        res.records = 1
