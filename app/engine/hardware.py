"""What this machine can run, and every memory estimate in LlamaDesk (the models code asks here).

Detection never imports llama_cpp: the GUI process must not load the engine's native code, so
the backend is read from the shared libraries that the llama-cpp-python build installed.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GB = 1e9
DEFAULT_CTX = 4096
DEFAULT_BATCH = 512
# CUDA context, cuBLAS workspace and allocator slack that llama.cpp cannot use for tensors.
VRAM_RESERVE = 700_000_000
# The worker process before it loads a model: Python and llama.cpp's code (measured: 43 MB).
RAM_RUNTIME = 50_000_000


@dataclass
class GPU:
    name: str
    total_bytes: int
    free_bytes: int


@dataclass
class Hardware:
    backend: str                  # CPU, CUDA, Metal, Vulkan, ROCm
    gpu_offload: bool
    gpus: list[GPU] = field(default_factory=list)
    ram_total: int = 0
    ram_available: int = 0
    logical_cpus: int = 1
    physical_cores: int = 1

    @property
    def free_vram(self) -> int | None:
        """Free memory on the first GPU (llama.cpp's main device), None without offload."""
        if not self.gpu_offload or not self.gpus:
            return None
        return self.gpus[0].free_bytes

    @property
    def default_threads(self) -> int:
        return max(1, self.physical_cores)


@dataclass
class ModelLayout:
    """What the planner needs to know about a model, from its GGUF header or the catalog."""
    n_layers: int
    layer_bytes: float          # weights of one repeating block (average)
    output_bytes: int           # output head + final norm (llama.cpp's extra "layer")
    embedding_bytes: int        # token embeddings, always kept in host memory
    kv_bytes_per_token_layer: int
    n_vocab: int
    n_head: int
    tied_output: bool = False   # output head is the embedding matrix: no extra host memory

    @classmethod
    def from_gguf(cls, info) -> "ModelLayout":
        n = max(1, info.n_layers)
        return cls(n_layers=info.n_layers, layer_bytes=sum(info.layer_bytes) / n,
                   output_bytes=info.output_bytes, embedding_bytes=info.embedding_bytes,
                   kv_bytes_per_token_layer=info.kv_bytes_per_token // n,
                   n_vocab=info.vocab_size, n_head=info.head_count, tied_output=info.tied_output)

    @classmethod
    def from_shape(cls, file_bytes: int, n_layers: int, n_embd: int, n_head: int, n_head_kv: int,
                   n_vocab: int, head_bits: float = 6.5625, embd_bits: float = 4.5) -> "ModelLayout":
        """Estimate from a file size and the architecture (catalog entries, before download)."""
        output = int(n_vocab * n_embd * head_bits / 8)
        embd = int(n_vocab * n_embd * embd_bits / 8)
        head_dim = n_embd // n_head
        return cls(n_layers=n_layers, layer_bytes=(file_bytes - output - embd) / n_layers,
                   output_bytes=output, embedding_bytes=embd,
                   kv_bytes_per_token_layer=n_head_kv * head_dim * 2 * 2,
                   n_vocab=n_vocab, n_head=n_head)



@dataclass
class OffloadPlan:
    n_gpu_layers: int      # llama.cpp's meaning: n_layers + 1 puts the output head on the GPU too
    n_layers: int
    vram_bytes: int
    ram_bytes: int
    fits: bool
    reason: str

    @property
    def full_gpu(self) -> bool:
        return self.n_gpu_layers > self.n_layers

    @property
    def label(self) -> str:
        if self.full_gpu:
            return "whole on the GPU"
        if self.n_gpu_layers > 0:
            return f"{self.n_gpu_layers}/{self.n_layers} layers on the GPU"
        return "CPU only" if self.fits else "does not fit"


def kv_cache_bytes(layout: ModelLayout, n_ctx: int, layers: int | None = None) -> int:
    return layout.kv_bytes_per_token_layer * n_ctx * (layout.n_layers if layers is None else layers)


def compute_buffer_bytes(layout: ModelLayout, n_ctx: int, n_batch: int = DEFAULT_BATCH) -> int:
    """llama.cpp's scratch for one batch, dominated by the f32 logits of a whole batch (SmolLM2,
    4096 context: 99.4 MiB reported by llama.cpp, this gives 104.9 MiB)."""
    return n_batch * (layout.n_vocab + n_ctx) * 4


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


def plan_offload(layout: ModelLayout, n_ctx: int = DEFAULT_CTX, free_vram: int | None = None,
                 free_ram: int | None = None, requested_layers: int | None = None,
                 n_batch: int = DEFAULT_BATCH) -> OffloadPlan:
    """Decide how many layers go to the GPU. Pure: all machine figures come in as arguments.

    A partly offloaded model runs several times slower than a whole one (shared/notes: 8 layers
    on the CPU cost 7x), which is why the sentence says so when the model is split.
    """
    n = layout.n_layers
    per_layer_gpu = layout.layer_bytes + kv_cache_bytes(layout, n_ctx, 1)
    compute = compute_buffer_bytes(layout, n_ctx, n_batch)
    full_vram = int(per_layer_gpu * n + layout.output_bytes + compute)

    if requested_layers is not None:
        layers = n + 1 if requested_layers < 0 else min(requested_layers, n + 1)
        why = f"{min(layers, n)} of {n} layers on the GPU, as requested"
    elif not free_vram:
        layers = 0
        why = None
    elif full_vram + VRAM_RESERVE <= free_vram:
        layers = n + 1
        why = (f"All {n} layers fit in {_gb(free_vram)} of free GPU memory (needs {_gb(full_vram)}, "
               f"with {_gb(kv_cache_bytes(layout, n_ctx))} of KV cache for {n_ctx} tokens): "
               f"the whole model runs on the GPU.")
    else:
        usable = free_vram - VRAM_RESERVE - compute
        layers = max(0, min(n, int(usable // per_layer_gpu)))
        why = (f"{layers} of {n} layers fit in {_gb(free_vram)} of free GPU memory "
               f"({_gb(per_layer_gpu)} per layer with its KV cache; the whole model needs "
               f"{_gb(full_vram)}); the other {n - layers} run on the CPU, several times slower, "
               f"so a smaller quant that fits whole will usually be faster.")

    gpu_layers = min(layers, n)
    on_gpu = layers > n
    vram = 0
    if layers > 0:
        vram = int(per_layer_gpu * gpu_layers + compute + (layout.output_bytes if on_gpu else 0))
    cpu_layers = n - gpu_layers
    ram = int(RAM_RUNTIME + layout.embedding_bytes + layout.layer_bytes * cpu_layers
              + kv_cache_bytes(layout, n_ctx, cpu_layers)
              + (0 if on_gpu or layout.tied_output else layout.output_bytes)
              + (compute if layers == 0 else layout.n_vocab * n_batch * 4))
    fits = free_ram is None or ram <= free_ram
    if why is None:
        why = (f"CPU only: needs {_gb(ram)} of RAM for weights and a {n_ctx}-token KV cache"
               + (f", {_gb(free_ram)} available." if free_ram is not None else "."))
        if not fits:
            why = f"Does not fit: needs {_gb(ram)} of RAM, only {_gb(free_ram)} available."
    elif not fits:
        why += f" It does not fit, though: {_gb(ram)} of RAM needed, {_gb(free_ram)} available."
    return OffloadPlan(n_gpu_layers=layers, n_layers=n, vram_bytes=vram, ram_bytes=ram,
                       fits=fits, reason=why)


MAX_CTX = 2**32 - 1   # llama.cpp holds n_ctx in a uint32


class ContextTooLarge(ValueError):
    """The context asked for cannot be allocated here; the message says what would fit."""


def check_context(layout: ModelLayout, n_ctx: int, ram_available: int, free_vram: int | None,
                  n_batch: int = DEFAULT_BATCH) -> None:
    """Refuse, before anything is loaded, a context whose KV cache (and the scratch that grows
    with it) cannot fit in the memory available: llama.cpp would otherwise try, and the worker
    grows until the kernel kills it. Weights are not counted: they are memory-mapped."""
    if n_ctx > MAX_CTX:
        raise ContextTooLarge(f"a context of {n_ctx:,} tokens is more than llama.cpp can hold "
                              f"({MAX_CTX:,})")
    per_token = kv_cache_bytes(layout, 1) + n_batch * 4
    have = ram_available + (free_vram or 0)
    need = kv_cache_bytes(layout, n_ctx) + compute_buffer_bytes(layout, n_ctx, n_batch)
    if need > have:
        fixed = compute_buffer_bytes(layout, 0, n_batch)
        most = max(0, (have - fixed) // per_token) // 1024 * 1024
        raise ContextTooLarge(f"a context of {n_ctx:,} tokens needs {_gb(need)} of memory for its KV "
                              f"cache; {_gb(have)} is available: use a context of at most {most:,} tokens")


def check_context_here(info, n_ctx: int, hw: Hardware | None = None) -> None:
    """check_context with this machine's free memory, for a model's GGUF header."""
    hw = hw or detect()
    check_context(ModelLayout.from_gguf(info), n_ctx, hw.ram_available, hw.free_vram)


def bound_threads(requested: int | None, hw: Hardware | None = None) -> int:
    """Threads for llama.cpp: 0 or None means the physical cores; more than the logical CPUs
    only slows it down (and a huge number makes it fail to start its threads)."""
    logical = hw.logical_cpus if hw else (os.cpu_count() or 1)
    if not requested or requested < 1:
        return (hw or detect()).default_threads
    return min(requested, logical)


# --- detection -----------------------------------------------------------------------------

def llama_lib_dir() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def detect_backend() -> str:
    lib = llama_lib_dir()
    names = " ".join(p.name.lower() for p in lib.iterdir()) if lib and lib.is_dir() else ""
    for marker, backend in (("ggml-cuda", "CUDA"), ("ggml-metal", "Metal"), ("ggml-hip", "ROCm"),
                            ("ggml-vulkan", "Vulkan")):
        if marker in names:
            return backend
    if sys.platform == "darwin" and platform.machine() == "arm64" and "ggml" in names:
        return "Metal"  # older wheels link Metal into libggml itself
    return "CPU"


def _ram() -> tuple[int, int]:
    if sys.platform.startswith("linux"):
        vals = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                vals[key] = int(rest.split()[0]) * 1024
        return vals.get("MemTotal", 0), vals.get("MemAvailable", vals.get("MemFree", 0))
    if sys.platform == "darwin":
        total = int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True,
                                   text=True, timeout=5).stdout.strip() or 0)
        return total, int(total * 0.7)
    if sys.platform == "win32":
        class MemStatus(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]
        st = MemStatus()
        st.dwLength = ctypes.sizeof(st)
        ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(st))
        return st.ullTotalPhys, st.ullAvailPhys
    return 0, 0


def _physical_cores() -> int:
    logical = os.cpu_count() or 1
    if sys.platform.startswith("linux"):
        cores, phys = set(), "0"
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith("physical id"):
                        phys = line.split(":")[1].strip()
                    elif line.startswith("core id"):
                        cores.add((phys, line.split(":")[1].strip()))
        except OSError:
            pass
        return len(cores) or logical
    return max(1, logical // 2) if logical > 4 else logical


def _cuda_gpus() -> list[GPU]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,memory.free",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(GPU(parts[0], int(parts[1]) * 2**20, int(parts[2]) * 2**20))
    return gpus


def detect() -> Hardware:
    backend = detect_backend()
    total, available = _ram()
    gpus: list[GPU] = []
    if backend in ("CUDA", "ROCm", "Vulkan"):
        gpus = _cuda_gpus()
    elif backend == "Metal":
        # Unified memory: Metal's recommended working set is about three quarters of RAM.
        gpus = [GPU("Apple GPU (unified memory)", int(total * 0.75), int(min(total * 0.75, available)))]
    return Hardware(backend=backend, gpu_offload=backend != "CPU" and bool(gpus), gpus=gpus,
                    ram_total=total, ram_available=available, logical_cpus=os.cpu_count() or 1,
                    physical_cores=_physical_cores())


def resolve_gpu_layers(requested, info, n_ctx: int = DEFAULT_CTX, hw: Hardware | None = None) -> tuple[int, str]:
    """`auto` (or None) asks the planner with this machine's free memory; a number is taken as given."""
    if requested not in (None, "auto"):
        return int(requested), f"{requested} GPU layers, as set"
    hw = hw or detect()
    plan = plan_offload(ModelLayout.from_gguf(info), n_ctx, free_vram=hw.free_vram, free_ram=hw.ram_available)
    return plan.n_gpu_layers, plan.reason


@dataclass
class PairPlan:
    chat: OffloadPlan | None
    completion: OffloadPlan
    message: str


def plan_pair(chat_info, chat_ctx: int, completion_info, completion_ctx: int,
              free_vram: int | None = None, free_ram: int | None = None) -> PairPlan:
    """Fit a chat model and a completion model at once (two engines). The completion model is
    placed first, whole on the GPU if it can be, because ghost text lives on latency; the chat
    model gets what is left. The message names the model that does not fit, if one does not."""
    comp = plan_offload(ModelLayout.from_gguf(completion_info), completion_ctx,
                        free_vram=free_vram, free_ram=free_ram)
    if chat_info is None:
        msg = "" if comp.fits else f"The completion model does not fit: {comp.reason}"
        return PairPlan(None, comp, msg)
    vram_left = None if free_vram is None else max(0, free_vram - comp.vram_bytes)
    ram_left = None if free_ram is None else max(0, free_ram - comp.ram_bytes)
    chat = plan_offload(ModelLayout.from_gguf(chat_info), chat_ctx, free_vram=vram_left,
                        free_ram=ram_left)
    if not comp.fits:
        msg = f"The completion model {completion_info.name} does not fit: {comp.reason}"
    elif not chat.fits:
        msg = (f"Both models do not fit: with the completion model {completion_info.name} loaded "
               f"({_gb(comp.ram_bytes + comp.vram_bytes)}), the chat model {chat_info.name} "
               f"does not fit. {chat.reason}")
    else:
        msg = (f"Both fit: completion model {completion_info.name} ({comp.label}), chat model "
               f"{chat_info.name} ({chat.label}).")
    return PairPlan(chat, comp, msg)
