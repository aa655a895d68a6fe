"""Which catalog file fits this machine, and which one to recommend (and why, in one sentence).

All memory arithmetic is the engine's planner (app.engine.hardware); this module only asks it.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.engine import hardware
from app.models.catalog import QUANTS, CatalogFile, files

MIN_QUANT = "Q3_K_M"   # below this the 34B models lose too much to be worth it
# On the CPU (or split between GPU and CPU) speed falls with file size: the balanced quants first.
CPU_PREFERENCE = ["Q4_K_M", "Q5_K_M", "Q4_K_S", "Q5_K_S", "Q3_K_L", "Q3_K_M"]


@dataclass
class Machine:
    free_vram: int | None      # None: no GPU offload in this build
    free_ram: int
    label: str = ""

    @classmethod
    def detect(cls) -> "Machine":
        hw = hardware.detect()
        gpu = f"{hw.gpus[0].name}, " if hw.gpus else ""
        return cls(hw.free_vram, hw.ram_available, f"{gpu}{hw.backend}")


@dataclass
class Recommendation:
    file: CatalogFile | None
    plan: hardware.OffloadPlan | None
    reason: str


def layout(f: CatalogFile) -> hardware.ModelLayout:
    s = f.shape
    return hardware.ModelLayout.from_shape(f.size_bytes, s.n_layers, s.n_embd, s.n_head, s.n_head_kv, s.n_vocab)


def fit(f: CatalogFile, machine: Machine, n_ctx: int = hardware.DEFAULT_CTX) -> hardware.OffloadPlan:
    return hardware.plan_offload(layout(f), n_ctx, free_vram=machine.free_vram, free_ram=machine.free_ram)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def recommend(machine: Machine, n_ctx: int = hardware.DEFAULT_CTX, model: str = "phind-v2",
              catalog: list[CatalogFile] | None = None) -> Recommendation:
    catalog = catalog or files()
    ok_quants = QUANTS[QUANTS.index(MIN_QUANT):]
    candidates = [model] + [m for m in dict.fromkeys(f.model for f in catalog if f.tier == 1)]
    prefix = ""
    for key in candidates:
        model_files = [f for f in catalog if f.model == key and f.quant in ok_quants]
        if not model_files:
            continue
        plans = {f.id: fit(f, machine, n_ctx) for f in model_files}
        whole = [f for f in model_files if plans[f.id].full_gpu]
        if whole:
            best = max(whole, key=lambda f: f.size_bytes)
            p = plans[best.id]
            return Recommendation(best, p, prefix + (
                f"{best.name} {best.quant} ({_gb(best.size_bytes)}) is the largest quant that fits "
                f"whole on the GPU: it needs {_gb(p.vram_bytes)} of the {_gb(machine.free_vram)} free, "
                f"with a {n_ctx}-token context."))
        by_quant = {f.quant: f for f in model_files}
        for quant in CPU_PREFERENCE:
            f = by_quant.get(quant)
            if f is not None and plans[f.id].fits:
                p = plans[f.id]
                where = (f"with {p.n_gpu_layers} of {p.n_layers} layers on the GPU"
                         if p.n_gpu_layers else "on the CPU")
                no_gpu = ("no quant fits whole in the GPU's " + _gb(machine.free_vram) + ", so"
                          if machine.free_vram else "without GPU offload")
                return Recommendation(f, p, prefix + (
                    f"{f.name} {f.quant} ({_gb(f.size_bytes)}) runs {where}: {no_gpu} the balanced "
                    f"Q4/Q5 quants are the best choice, needing {_gb(p.ram_bytes)} of the "
                    f"{_gb(machine.free_ram)} of RAM available."))
        if not prefix:
            smallest = fit(by_quant[MIN_QUANT], machine, n_ctx) if MIN_QUANT in by_quant else None
            need = f" (its {MIN_QUANT} needs {_gb(smallest.ram_bytes)} of RAM)" if smallest else ""
            prefix = f"{model_files[0].name} does not fit{need}; "
    return Recommendation(None, None, (
        f"Nothing in the catalog fits: even the smallest recommended quant needs more than the "
        f"{_gb(machine.free_ram)} of RAM available."))
