"""The offload planner on the Phind-CodeLlama-34B layout, and its RAM estimate against reality."""
import asyncio

import pytest

from app.engine import hardware
from app.engine.client import EngineClient
from app.engine.protocol import GenerateParams
from app.models import gguf_file
from tests.helpers import arun, rss_bytes

GB = 1_000_000_000
# CodeLlama-34B: 48 layers, n_embd 8192, 64 heads, 8 KV heads, 32000 tokens; Q4_K_M = 20.22 GB.
PHIND_34B_Q4_K_M = hardware.ModelLayout.from_shape(20_220_000_000, 48, 8192, 64, 8, 32000)


def plan(free_vram, free_ram=64 * GB, n_ctx=4096):
    return hardware.plan_offload(PHIND_34B_Q4_K_M, n_ctx, free_vram=free_vram, free_ram=free_ram)


def test_kv_cache_of_34b_at_4096_tokens():
    # 48 layers x 8 KV heads x 128 dims x (K+V) x 2 bytes x 4096 tokens
    assert hardware.kv_cache_bytes(PHIND_34B_Q4_K_M, 4096) == 48 * 8 * 128 * 2 * 2 * 4096


@pytest.mark.parametrize("free_vram,layers", [
    (80 * GB, 49),   # H100: everything, output head included
    (24 * GB, 49),   # RTX 4090: 21.0 GB needed, fits whole
    (16 * GB, 35),   # (16 - 0.7 reserve - 0.07 compute) / 0.43 GB per layer
    (8 * GB, 16),
    (None, 0),       # no GPU
    (0, 0),
])
def test_planner_layer_counts_for_34b(free_vram, layers):
    p = plan(free_vram)
    assert p.n_gpu_layers == layers
    assert p.fits


def test_planner_explains_partial_offload_with_numbers():
    p = plan(16 * GB)
    assert not p.full_gpu and p.label == "35/48 layers on the GPU"
    assert "35 of 48" in p.reason and "16.0 GB" in p.reason and "slower" in p.reason
    assert p.vram_bytes <= 16 * GB - hardware.VRAM_RESERVE


def test_planner_whole_gpu_needs_little_ram():
    whole, cpu = plan(24 * GB), plan(None)
    assert whole.full_gpu and whole.ram_bytes < 1 * GB
    assert 20 * GB < cpu.ram_bytes < 23 * GB


def test_planner_says_when_nothing_fits():
    p = plan(None, free_ram=16 * GB)
    assert not p.fits and p.label == "does not fit" and "16.0 GB" in p.reason


def test_requested_layers_are_honoured():
    assert hardware.plan_offload(PHIND_34B_Q4_K_M, 4096, 80 * GB, requested_layers=10).n_gpu_layers == 10
    assert hardware.plan_offload(PHIND_34B_Q4_K_M, 4096, 80 * GB, requested_layers=-1).full_gpu


def test_longer_context_needs_more_memory():
    assert plan(16 * GB, n_ctx=16384).n_gpu_layers < plan(16 * GB).n_gpu_layers


def test_detect_reports_this_machine():
    hw = hardware.detect()
    assert hw.backend in ("CPU", "CUDA", "Metal", "Vulkan", "ROCm")
    assert hw.ram_total > hw.ram_available > 0
    assert hw.default_threads >= 1


def test_ram_estimate_within_30_percent_of_worker_growth(smollm):
    n_ctx = 4096
    info = gguf_file.inspect(smollm)
    estimate = hardware.plan_offload(hardware.ModelLayout.from_gguf(info), n_ctx).ram_bytes
    model_part = estimate - hardware.RAM_RUNTIME  # the worker's own baseline is measured apart

    async def go():
        async with EngineClient() as client:
            await client._spawn()
            before = rss_bytes(client.worker_pid)
            await client.load(smollm, n_ctx=n_ctx, n_threads=2)
            # a prompt longer than one batch touches the whole compute buffer
            prompt = "".join(f"value_{i} = compute({i}, {i * 3})\n" for i in range(200))
            await client.generate(prompt, GenerateParams(max_tokens=32)).result()
            return before, rss_bytes(client.worker_pid)

    before, after = arun(go())
    growth = after - before
    assert abs(model_part - growth) / growth < 0.30, (model_part, growth)
    assert abs(estimate - after) / after < 0.30, (estimate, after)


# --- issue 11 item 16: refused before loading, not by the OOM killer ---------------------------

def test_context_whose_kv_cache_does_not_fit_is_refused_with_what_fits():
    with pytest.raises(hardware.ContextTooLarge, match=r"KV cache.*at most [\d,]+ tokens") as err:
        hardware.check_context(PHIND_34B_Q4_K_M, 1_000_000, ram_available=64 * GB, free_vram=None)
    most = int(str(err.value).rsplit("at most ", 1)[1].split()[0].replace(",", ""))
    hardware.check_context(PHIND_34B_Q4_K_M, most, ram_available=64 * GB, free_vram=None)
    with pytest.raises(hardware.ContextTooLarge):
        hardware.check_context(PHIND_34B_Q4_K_M, most + 8192, ram_available=64 * GB, free_vram=None)
    hardware.check_context(PHIND_34B_Q4_K_M, 16384, ram_available=8 * GB, free_vram=None)
    with pytest.raises(hardware.ContextTooLarge, match="more than llama.cpp can hold"):
        hardware.check_context(PHIND_34B_Q4_K_M, 99_999_999_999, ram_available=10**15, free_vram=None)


def test_threads_are_bounded_by_the_cpus():
    hw = hardware.Hardware("CPU", False, logical_cpus=8, physical_cores=4)
    assert hardware.bound_threads(100_000, hw) == 8
    assert hardware.bound_threads(None, hw) == hardware.bound_threads(0, hw) == 4
    assert hardware.bound_threads(3, hw) == 3
