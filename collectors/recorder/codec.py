"""One tick of the store <-> one record's payload, delta-encoded against the previous record.

Each record lists, per part (F, S, E, M, IO; see format.py), only the rows of cgroups whose values
changed since the previous record, as element-wise differences (or raw, for a row new to the
group or of a new width), column by column. An idle cgroup costs nothing. A keyframe (every
``keyframe_every`` records, and the first record of every segment and every writer) carries
every row raw and the whole path table, so a reader starts there and applies at most
``keyframe_every`` records to reach any tick.

Rates are not stored where they can be derived: CPU rates from the cgroup's previous read (the
decoder keeps it), memory rates from the sample; io rates are stored (slow cadence, see s_row).
"""

from __future__ import annotations

import marshal
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain

import zstandard

from collectors.rates import HostInfo, compute_rates
from collectors.recorder.format import (
    E_WIDTH,
    F_WIDTH,
    NONE,
    S_WIDTH,
    Base,
    FormatError,
    build_sample,
    cpu_sample,
    f_row,
    io_from,
    io_rates_from,
    io_row,
    m_row,
    pack_ints,
    s_row,
    unpack_ints,
)
from collectors.sample import CgroupRates, CgroupSample

VERSION = 1
LEVEL = 3  # zstandard level: ~4x cheaper than 9 here for a few % more bytes
Row = tuple[int, ...]
PARTS = ("f", "s", "e", "m", "io")


@dataclass(slots=True)
class TickEntry:
    """One store entry at one tick: what the recorder is handed on the event loop. Treat as
    immutable (not frozen: a frozen __init__ costs 2-3x, and the loop builds one per cgroup
    per tick)."""

    path: str
    sample: CgroupSample
    rates: CgroupRates
    gone: bool
    stale: bool
    first_seen_wall: float


@dataclass(frozen=True, slots=True)
class TickInput:
    mono: float
    wall: float
    entries: Sequence[TickEntry]
    host: HostInfo


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The store as it was at one recorded tick."""

    wall: float
    mono: float
    entries: tuple[TickEntry, ...]
    keyframe: bool = False


def _cpu_scale(entries: Sequence[TickEntry]) -> int:
    """docker's CPU % over cores x 100 this tick (host CPU time vs wall time; ~1.0), x 1e6."""
    for e in entries:
        c, p = e.rates.cpu_cores, e.rates.cpu_percent
        if c and p is not None and c > 1e-3:
            return round(p / (c * 100) * 1e6)
    return 1_000_000


def _columns(rows: Sequence[Row], width: int) -> bytes:
    """Column-major: a field's values side by side compress far better than rows."""
    return pack_ints(list(chain.from_iterable(zip(*rows, strict=True)))) if rows else b""


def _rows(blob: bytes, n: int, width: int) -> list[Row]:
    vals = unpack_ints(blob)
    if len(vals) != n * width:
        raise FormatError("block size does not match its rows")
    if not n:
        return []
    return list(zip(*(vals[c * n : (c + 1) * n] for c in range(width)), strict=True))


class TickEncoder:
    def __init__(self, keyframe_every: int = 30, level: int = LEVEL) -> None:
        self.keyframe_every = keyframe_every
        self._z = zstandard.ZstdCompressor(level=level)
        self._since_key = keyframe_every  # the first record is a keyframe
        self._base = Base(0.0, 0.0)
        self._ids: dict[str, int] = {}
        self._keys: dict[str, int] = {}
        self._prev: dict[str, dict[int, Row]] = {p: {} for p in PARTS}
        self._cache: dict[str, tuple[CgroupSample, Row, Row, Row, Row]] = {}  # per path
        self._order: list[int] = []

    def force_keyframe(self) -> None:
        self._since_key = self.keyframe_every

    def encode(self, t: TickInput) -> tuple[bytes, bool]:
        """(zstandard frame, keyframe?) of one tick."""
        key = self._since_key >= self.keyframe_every
        if key:
            self._since_key = 0
            self._base = Base(t.mono, t.wall)
            self._ids, self._keys = {}, {}
            self._prev = {p: {} for p in PARTS}
            self._cache = {}
        self._since_key += 1
        b, ids, keys, cache = self._base, self._ids, self._keys, self._cache
        n_keys = len(keys)
        new_paths: list[str] = []
        order: list[int] = []
        cur: dict[str, dict[int, Row]] = {p: {} for p in PARTS}
        fc, sc, ec, mc, ic = (cur[p] for p in PARTS)
        wall0 = b.wall
        for e in t.entries:
            i = ids.get(e.path)
            if i is None:
                i = ids[e.path] = len(ids)
                new_paths.append(e.path)
            order.append(i)
            s = e.sample
            c = cache.get(e.path)
            if c is None or c[0] is not s:
                r = e.rates
                io_r = (r.io_read_bps, r.io_write_bps, r.io_read_iops, r.io_write_iops)
                # memory.stat and io.stat objects live across ticks (slow cadence): reuse rows
                ms, io = s.memory_stat, s.io
                m = c[3] if c is not None and c[0].memory_stat is ms else m_row(ms, keys)
                i_o = c[4] if c is not None and c[0].io is io else io_row(io)
                c = (s, f_row(s, b), s_row(s, io_r, b), m, i_o)
                cache[e.path] = c
            fc[i], sc[i], mc[i], ic[i] = c[1], c[2], c[3], c[4]
            ec[i] = (int(e.gone), int(e.stale), round((e.first_seen_wall - wall0) * 1e6))
        if len(cache) > 2 * len(t.entries) + 64:  # paths gone from the store
            live = {e.path for e in t.entries}
            for p in [p for p in cache if p not in live]:
                del cache[p]
        width_m = len(keys)
        blocks: list[tuple[bytes, ...]] = []
        for part, width in (("f", F_WIDTH), ("s", S_WIDTH), ("e", E_WIDTH), ("m", width_m)):
            blocks.append(self._diff(cur[part], self._prev[part], width))
        blocks.append(self._diff_io(ic, self._prev["io"]))
        self._prev = cur
        same_order = not key and order == self._order
        self._order = order
        host = t.host
        meta = (
            VERSION,
            key,
            (b.mono, b.wall) if key else None,
            round((t.mono - b.mono) * 1e6),
            round((t.wall - b.wall) * 1e6),
            (host.cpus, host.mem_bytes, _cpu_scale(t.entries)),
            tuple(new_paths),
            tuple(list(keys)[n_keys:]),
            None if same_order else pack_ints(order),
            tuple(blocks),
        )
        return self._z.compress(marshal.dumps(meta)), key

    @staticmethod
    def _diff(cur: dict[int, Row], prev: dict[int, Row], width: int) -> tuple[bytes, bytes]:
        """(ids x2 + raw flag, column-major block) of rows that changed; rows are padded to
        ``width`` (memory.stat keys appended within the group)."""
        tags: list[int] = []
        out: list[Row] = []
        sub = operator.sub
        for i, row in cur.items():
            if len(row) < width and row:
                row = row + (NONE,) * (width - len(row))
                cur[i] = row
            p = prev.get(i)
            if p is not None and len(p) < width and p:
                p = p + (NONE,) * (width - len(p))
            if p == row:
                continue
            if p is not None and len(p) == len(row) == width:
                tags.append(i * 2)
                out.append(tuple(map(sub, row, p)))
            elif len(row) == width:
                tags.append(i * 2 + 1)
                out.append(row)
            else:  # an empty row (no memory.stat): marked raw with no values
                tags.append(i * 2 + 1)
                out.append((NONE,) * width if width else ())
        return pack_ints(tags), _columns(out, width) if width else b""

    @staticmethod
    def _diff_io(cur: dict[int, Row], prev: dict[int, Row]) -> tuple[bytes, bytes, bytes]:
        ids: list[int] = []
        lens: list[int] = []
        vals: list[int] = []
        for i, row in cur.items():
            if prev.get(i) != row:
                ids.append(i)
                lens.append(len(row))
                vals += row
        return pack_ints(ids), pack_ints(lens), pack_ints(vals)


class TickDecoder:
    """Applies records in order; ``snapshot`` materialises the store at the last one applied."""

    def __init__(self) -> None:
        self._dz = zstandard.ZstdDecompressor()
        self.ready = False  # a keyframe has been applied
        self._reset()

    def _reset(self) -> None:
        self.base = Base(0.0, 0.0)
        self.paths: list[str] = []
        self.keys: list[str] = []
        self.rows: dict[str, dict[int, Row]] = {p: {} for p in PARTS}
        self.f_prev: dict[int, Row] = {}  # each cgroup's F row before its last change
        self.order: list[int] = []
        self.mono = self.wall = 0.0
        self.host = HostInfo(1, 1)
        self.cpu_scale = 1.0
        self.keyframe = False

    def apply(self, frame: bytes) -> None:
        try:
            meta = marshal.loads(self._dz.decompress(frame))
            (version, key, base, mono_us, wall_us, host, new_paths, new_keys, order,
             blocks) = meta  # fmt: skip
        except (zstandard.ZstdError, ValueError, EOFError, TypeError) as e:
            raise FormatError(f"undecodable record: {e}") from None
        if version != VERSION:
            raise FormatError(f"record version {version}, this reader knows {VERSION}")
        carry = None
        if key:
            if self.ready:  # keep each cgroup's previous read across the keyframe (rates)
                carry = self._by_path(Base(*base))
            self._reset()
            self.base = Base(*base)
            self.ready = True
        elif not self.ready:
            raise FormatError("delta record without its keyframe")
        self.keyframe = bool(key)
        b = self.base
        self.mono = b.mono + mono_us / 1e6
        self.wall = b.wall + wall_us / 1e6
        self.host = HostInfo(host[0], host[1])
        self.cpu_scale = host[2] / 1e6
        self.paths.extend(new_paths)
        self.keys.extend(new_keys)
        if order is not None:
            self.order = unpack_ints(order)
        widths = (F_WIDTH, S_WIDTH, E_WIDTH, len(self.keys))
        for part, width, (tags_b, block) in zip(
            ("f", "s", "e", "m"), widths, blocks[:4], strict=True
        ):
            tags = unpack_ints(tags_b)
            if tags:
                self._apply_part(part, width, tags, block)
        if carry is not None:
            self._carry(carry)
        ids_b, lens_b, vals_b = blocks[4]
        vals = unpack_ints(vals_b)
        pos = 0
        io = self.rows["io"]
        for i, n in zip(unpack_ints(ids_b), unpack_ints(lens_b), strict=True):
            io[i] = tuple(vals[pos : pos + n])
            pos += n

    def _by_path(self, nb: Base) -> dict[str, tuple[Row, Row | None]]:
        """Each path's current and previous F rows, re-based on the next group's ``nb``."""
        d_mono = round((self.base.mono - nb.mono) * 1e6)
        d_off = round(((self.base.wall - self.base.mono) - (nb.wall - nb.mono)) * 1e6)

        def rebase(r: Row) -> Row:
            return (r[0], r[1] + d_mono, r[2] + d_off, *r[3:])

        fr, fp = self.rows["f"], self.f_prev
        out: dict[str, tuple[Row, Row | None]] = {}
        for i, row in fr.items():
            p = fp.get(i)
            out[self.paths[i]] = (rebase(row), None if p is None else rebase(p))
        return out

    def _carry(self, carry: dict[str, tuple[Row, Row | None]]) -> None:
        fr, fp = self.rows["f"], self.f_prev
        for i, path in enumerate(self.paths):
            c = carry.get(path)
            row = fr.get(i)
            if c is None or row is None:
                continue
            cur, prev = c
            if row == cur:  # not re-read at the keyframe's tick: its previous read stays
                if prev is not None:
                    fp[i] = prev
            else:
                fp[i] = cur

    def _apply_part(self, part: str, width: int, tags: list[int], block: bytes) -> None:
        rows = self.rows[part]
        n = len(tags)
        ids = [t >> 1 for t in tags]
        olds = [rows.get(i) for i in ids]
        add = operator.add
        news: list[Row]
        if width and part != "m" and not any(t & 1 for t in tags) and None not in olds:
            # the common case, in bulk and column by column (52 maps, not 1,000): every
            # changed row is a delta of a known row
            vals = unpack_ints(block)
            if len(vals) != n * width:
                raise FormatError("block size does not match its rows")
            old_cols = zip(*olds, strict=True)
            cols = [list(map(add, o, vals[c * n : (c + 1) * n])) for c, o in enumerate(old_cols)]
            news = list(zip(*cols, strict=True))
        else:
            changed = _rows(block, n, width) if width else [()] * n
            news = []
            for tag, old, r in zip(tags, olds, changed, strict=True):
                if tag & 1 or old is None:
                    news.append(r)
                    continue
                if len(old) < width:
                    old = old + (NONE,) * (width - len(old))
                news.append(tuple(map(add, old, r)))
        if part == "f":
            self.f_prev.update((i, o) for i, o in zip(ids, olds, strict=True) if o is not None)
        rows.update(zip(ids, news, strict=True))

    def snapshot(self, paths: set[str] | None = None) -> Snapshot:
        """Samples and rates at the last applied record (only ``paths`` when given)."""
        b, keys, rows = self.base, self.keys, self.rows
        fr, sr, er, mr, ior = (rows[p] for p in PARTS)
        out: list[TickEntry] = []
        for i in self.order:
            path = self.paths[i]
            if paths is not None and path not in paths:
                continue
            f, s = fr[i], sr[i]
            sample = build_sample(path, f, s, mr.get(i, ()), ior.get(i, ()), keys, b)
            rates = self._rates(i, sample, s)
            e = er[i]
            out.append(TickEntry(path, sample, rates, bool(e[0]), bool(e[1]), b.wall + e[2] / 1e6))
        return Snapshot(self.wall, self.mono, tuple(out), self.keyframe)

    def _rates(self, i: int, cur: CgroupSample, s: Row) -> CgroupRates:
        p = self.f_prev.get(i)
        # the previous read needs only what compute_rates takes from it (identity, CPU)
        prev = None if p is None else cpu_sample(cur.path, p, self.base)
        r = compute_rates(prev, cur, self.host)  # io rates: stored ones, below
        rb, wb, ri, wi = io_rates_from(s)
        pct = r.cpu_percent * self.cpu_scale if r.cpu_percent is not None else None
        return replace(
            r, cpu_percent=pct, io_read_bps=rb, io_write_bps=wb, io_read_iops=ri,
            io_write_iops=wi,
        )  # fmt: skip


__all__ = ["Snapshot", "TickDecoder", "TickEncoder", "TickEntry", "TickInput", "io_from"]
