"""Benchmark: our download against huggingface-hub's, on a loopback server speaking the hub's protocol.

A = `Downloader` (HTTP Range download, sha256 computed while downloading, GGUF header check),
B = `hf_hub_download` followed by a sha256 of the file (what it takes to know the file is right).
Same ~400 MB GGUF file, a fresh cache each time, alternated, ROUNDS each; throughput ratio A/B
of the medians. Target >= 0.95. Also reported: the ratio against hf_hub_download alone (without
the extra sha256 pass, which huggingface-hub does not do for you), so the transfer itself is
compared too. Then a transfer cut at 50%: bytes fetched again beyond the missing half, target
<= 1% of the file.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gguf  # noqa: E402
import numpy as np  # noqa: E402

from app.models import download as d  # noqa: E402
from tests.hubserver import Fault, HubServer  # noqa: E402

ROUNDS = 5
REPO = "bench/model"
NAME = "bench.Q8_0.gguf"


def make_file(path: Path, mb: int = 400) -> bytes:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(4)
    rng = np.random.default_rng(1)
    rows = mb * 1_000_000 // 4 // 4 // 1024
    for i in range(4):
        w.add_tensor(f"blk.{i}.ffn_up.weight", rng.standard_normal((rows, 1024), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def ours(hub, cache: Path) -> float:
    t0 = time.perf_counter()
    d.Downloader(d.resolve(REPO, NAME, endpoint=hub.endpoint), cache=cache).run()
    return time.perf_counter() - t0


def theirs(hub, cache: Path, sha: str) -> tuple[float, float]:
    """(download + sha256, download alone)"""
    from huggingface_hub import hf_hub_download

    t0 = time.perf_counter()
    path = hf_hub_download(REPO, NAME, cache_dir=cache, endpoint=hub.endpoint)
    downloaded = time.perf_counter() - t0
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    assert h.hexdigest() == sha
    return time.perf_counter() - t0, downloaded


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub:
        tmp = Path(tmp)
        data = make_file(tmp / NAME)
        f = hub.state.add(REPO, NAME, data)
        mb = len(data) / 1e6
        a, b, b_plain = [], [], []
        for r in range(ROUNDS):
            for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                cache = tmp / f"cache-{side}-{r}"
                if side == "A":
                    a.append(ours(hub, cache))
                else:
                    total, plain = theirs(hub, cache, f.sha256)
                    b.append(total)
                    b_plain.append(plain)
                shutil.rmtree(cache)
            print(f"round {r + 1}: ours {mb / a[-1]:.0f} MB/s, hf_hub_download + sha256 {mb / b[-1]:.0f} MB/s "
                  f"(hf_hub_download alone {mb / b_plain[-1]:.0f} MB/s)", flush=True)
        ratio = statistics.median(b) / statistics.median(a)
        ratio_plain = statistics.median(b_plain) / statistics.median(a)

        hub.state.served[f.sha256] = 0
        hub.state.fault(f.sha256, Fault("drop", at=len(data) // 2))
        dl = d.Downloader(d.resolve(REPO, NAME, endpoint=hub.endpoint), cache=tmp / "cut",
                          policy=d.Policy(backoff_s=0.01))
        dl.run()
        extra = hub.state.served[f.sha256] - len(data)
        extra_pct = 100 * extra / len(data)
        print(f"cut at 50%: {hub.state.served[f.sha256]} bytes served for a {len(data)}-byte file, "
              f"{extra} fetched twice ({extra_pct:.3f}%)")
    return {"benchmark": "download_speed", "metric": "throughput_ratio_ours_vs_hf_hub_download_plus_sha256",
            "value": round(ratio, 3), "target": ">= 0.95", "met": ratio >= 0.95 and extra_pct <= 1.0,
            "file_mb": round(mb), "ours_mb_s": round(mb / statistics.median(a)),
            "hf_mb_s": round(mb / statistics.median(b)),
            "ratio_vs_hf_hub_download_alone": round(ratio_plain, 3),
            "hf_alone_mb_s": round(mb / statistics.median(b_plain)), "refetched_after_cut_pct": round(extra_pct, 4),
            "refetched_target": "<= 1"}


if __name__ == "__main__":
    print(json.dumps(main()))
