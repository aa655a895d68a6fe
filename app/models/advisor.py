"""Which catalog file fits this machine, how fast it will run here, and which one to recommend
for Ask/Edit and for completion at the cursor (and why, in one sentence).

All memory arithmetic is the engine's planner (app.engine.hardware); this module only asks it.
"""
from __future__ import annotations

from dataclasses import dataclass

import functools

from app.engine import hardware
from app.models import speed
from app.models.catalog import QUANTS, CatalogFile, files

MIN_QUANT = "Q3_K_M"   # below this the 34B models lose too much to be worth it
# On the CPU (or split between GPU and CPU) speed falls with file size: the balanced quants first.
CPU_PREFERENCE = ["Q4_K_M", "Q5_K_M", "Q4_K_S", "Q5_K_S", "Q3_K_L", "Q3_K_M"]
INTERACTIVE_TPS = 3.0  # below this nobody waits for an answer; never recommended without saying so
ASK_TPS = 8.0          # an answer that reads as fast as it streams
COMPLETE_TPS = 12.0    # ghost text has to arrive before the next keystroke


@dataclass
class Machine:
    free_vram: int | None      # None: no GPU offload in this build
    free_ram: int
    label: str = ""
    speed: speed.Speed | None = None   # measured here (cached), None before the first measurement

    @classmethod
    def detect(cls) -> "Machine":
        """This machine; the hardware is detected once per process (nvidia-smi can take seconds)."""
        hw = detected_hardware()
        gpu = f"{hw.gpus[0].name}, " if hw.gpus else ""
        return cls(hw.free_vram, hw.ram_available, f"{gpu}{hw.backend}", speed.load())


@functools.lru_cache(maxsize=1)
def detected_hardware() -> hardware.Hardware:
    return hardware.detect()


@dataclass
class Recommendation:
    file: CatalogFile | None
    plan: hardware.OffloadPlan | None
    reason: str
    tps: float = 0.0           # predicted here
    slow: bool = False         # under INTERACTIVE_TPS: said so in the reason


def layout(f: CatalogFile) -> hardware.ModelLayout:
    s = f.shape
    return hardware.ModelLayout.from_shape(f.size_bytes, s.n_layers, s.n_embd, s.n_head, s.n_head_kv, s.n_vocab)


def fit(f: CatalogFile, machine: Machine, n_ctx: int = hardware.DEFAULT_CTX) -> hardware.OffloadPlan:
    return hardware.plan_offload(layout(f), n_ctx, free_vram=machine.free_vram, free_ram=machine.free_ram)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def best_quant(key: str, machine: Machine, n_ctx: int = hardware.DEFAULT_CTX,
               catalog: list[CatalogFile] | None = None) -> Recommendation:
    """The quant of one model to run here: the largest that fits whole on the GPU, else the
    balanced Q4/Q5 quants on the CPU (or split)."""
    catalog = catalog or files()
    ok_quants = QUANTS[QUANTS.index(MIN_QUANT):]
    model_files = [f for f in catalog if f.model == key and f.quant in ok_quants]
    if not model_files:
        return Recommendation(None, None, f"{key} has no file of {MIN_QUANT} or better.")
    plans = {f.id: fit(f, machine, n_ctx) for f in model_files}
    whole = [f for f in model_files if plans[f.id].full_gpu]
    if whole:
        best = max(whole, key=lambda f: f.size_bytes)
        p = plans[best.id]
        return Recommendation(best, p, (
            f"{best.name} {best.quant} ({_gb(best.size_bytes)}) is the largest quant that fits "
            f"whole on the GPU: it needs {_gb(p.vram_bytes)} of the {_gb(machine.free_vram)} free, "
            f"with a {n_ctx}-token context."))
    by_quant = {f.quant: f for f in model_files}
    for quant in CPU_PREFERENCE + [q for q in reversed(ok_quants) if q not in CPU_PREFERENCE]:
        f = by_quant.get(quant)
        if f is not None and plans[f.id].fits:
            p = plans[f.id]
            where = (f"with {p.n_gpu_layers} of {p.n_layers} layers on the GPU"
                     if p.n_gpu_layers else "on the CPU")
            no_gpu = ("no quant fits whole in the GPU's " + _gb(machine.free_vram) + ", so"
                      if machine.free_vram else "without GPU offload")
            return Recommendation(f, p, (
                f"{f.name} {f.quant} ({_gb(f.size_bytes)}) runs {where}: {no_gpu} the balanced "
                f"Q4/Q5 quants are the best choice, needing {_gb(p.ram_bytes)} of the "
                f"{_gb(machine.free_ram)} of RAM available."))
    smallest = fit(by_quant[MIN_QUANT], machine, n_ctx) if MIN_QUANT in by_quant else None
    need = f" (its {MIN_QUANT} needs {_gb(smallest.ram_bytes)} of RAM)" if smallest else ""
    return Recommendation(None, None, f"{model_files[0].name} does not fit{need}.")


# --- speed here -------------------------------------------------------------------------------

def predict_tps(size_bytes: int, plan: hardware.OffloadPlan | None, spd: speed.Speed,
                n_layers: int = 0) -> float:
    """Tokens/s of generation: every weight is read once per token, from the GPU's memory for
    the layers there and from RAM for the rest."""
    on_gpu = 0.0
    if plan is not None and plan.n_layers:
        on_gpu = size_bytes * min(1.0, plan.n_gpu_layers / (plan.n_layers + 1))
    return spd.tokens_per_s(size_bytes - on_gpu, on_gpu, n_layers)


def predictions(machine: Machine, n_ctx: int = hardware.DEFAULT_CTX,
                catalog: list[CatalogFile] | None = None) -> dict[str, float]:
    """Predicted tokens/s for every catalog file (0 for a file that does not fit)."""
    spd = machine.speed or speed.default()
    out = {}
    for f in catalog or files():
        p = fit(f, machine, n_ctx)
        out[f.id] = predict_tps(f.size_bytes, p, spd, f.shape.n_layers) if p.fits else 0.0
    return out


@dataclass
class Advice:
    """One answer for the toolbar, the welcome page and the Models panel (they show this)."""
    ask: Recommendation
    complete: Recommendation
    tps: dict[str, float]
    machine: Machine

    @property
    def measured(self) -> bool:
        return bool(self.machine.speed and self.machine.speed.measured)


def _pick(use: str, machine: Machine, n_ctx: int, catalog: list[CatalogFile],
          tps: dict[str, float]) -> Recommendation:
    """Ask/Edit: the best published HumanEval among chat models fast enough to use; completion
    at the cursor: infill models, base builds first, and a snappier speed."""
    if use == "complete":
        keys = [m for m in dict.fromkeys(f.model for f in catalog if f.infill)]
        keys.sort(key=lambda k: not next(f.base for f in catalog if f.model == k))
        goals = (COMPLETE_TPS, INTERACTIVE_TPS)
        what = "completion at the cursor"
    else:
        keys = list(dict.fromkeys(f.model for f in catalog if not f.base))
        goals = (ASK_TPS, INTERACTIVE_TPS)
        what = "Ask and Edit"
    options = []
    for key in keys:
        rec = best_quant(key, machine, n_ctx, catalog)
        if rec.file is not None:
            options.append((rec, tps.get(rec.file.id) or predict_tps(
                rec.file.size_bytes, rec.plan, machine.speed or speed.default(), rec.file.shape.n_layers)))
    if not options:
        return Recommendation(None, None, (
            f"Nothing in the catalog fits for {what}: even the smallest recommended quant needs more "
            f"than the {_gb(machine.free_ram)} of RAM available."))
    source = "measured here" if machine.speed and machine.speed.measured else "estimated until a model is loaded"
    for goal in goals:
        fast = [(r, t) for r, t in options if t >= goal]
        if fast:
            # base builds first for completion (they are trained for it), then published HumanEval
            rec, t = max(fast, key=lambda o: (use != "complete" or o[0].file.base, o[0].file.humaneval))
            slow = "" if goal > INTERACTIVE_TPS else f", under the {goals[0]:.0f} tokens/s that feels quick"
            return Recommendation(rec.file, rec.plan, (
                f"For {what}: {_describe(rec)} at about {t:.0f} tokens/s here ({source}{slow})."), t)
    rec, t = max(options, key=lambda o: o[1])
    return Recommendation(rec.file, rec.plan, (
        f"Nothing in the catalog reaches {INTERACTIVE_TPS:.0f} tokens/s here for {what} ({source}); "
        f"the fastest is {_describe(rec)} at about {t:.1f} tokens/s, too slow to use interactively."),
        t, slow=True)


def _describe(rec: Recommendation) -> str:
    f, p = rec.file, rec.plan
    where = ("whole on the GPU" if p.full_gpu else
             f"{p.n_gpu_layers}/{p.n_layers} layers on the GPU" if p.n_gpu_layers else "on the CPU")
    return (f"{f.name} {f.quant} ({_gb(f.size_bytes)}, HumanEval {f.humaneval:.1f}, {where}, "
            f"{_gb(p.ram_bytes if not p.full_gpu else p.vram_bytes)} of memory)")


def advise(machine: Machine, n_ctx: int = hardware.DEFAULT_CTX,
           catalog: list[CatalogFile] | None = None) -> Advice:
    catalog = catalog or files()
    tps = predictions(machine, n_ctx, catalog)
    return Advice(_pick("ask", machine, n_ctx, catalog, tps), _pick("complete", machine, n_ctx, catalog, tps),
                  tps, machine)


def recommend(machine: Machine, n_ctx: int = hardware.DEFAULT_CTX,
              catalog: list[CatalogFile] | None = None) -> Recommendation:
    """The file to download first (for Ask/Edit): what the toolbar, the welcome page and the
    Models panel all name."""
    catalog = catalog or files()
    return _pick("ask", machine, n_ctx, catalog, predictions(machine, n_ctx, catalog))
