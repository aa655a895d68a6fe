"""Curated GGUF builds: Phind-CodeLlama-34B (v2, v1, Python-v1), Code Llama fallbacks, and small
code models that laptops can run (Qwen2.5-Coder, deepseek-coder; instruct for Ask/Edit, base
builds for completion at the cursor).

Sizes are the decimal-GB figures of the repositories' file listings until `models refresh`
replaces them with the hub's exact sizes and sha256 (kept in the config folder with the time of
the refresh). HumanEval figures are the published pass@1 of the original (unquantised) models.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from app import paths
from app.atomic import write_atomic

LLAMA2 = "Llama 2 Community License"
APACHE2 = "Apache-2.0"
DEEPSEEK = "DeepSeek License Agreement"
QWEN_REPORT = "Qwen2.5-Coder Technical Report (arXiv 2409.12186), Tables 3 and 12"
DEEPSEEK_REPORT = "DeepSeek-Coder paper (arXiv 2401.14196), Tables 3 and 6"
QUANTS = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_K_S",
          "Q5_K_M", "Q6_K", "Q8_0"]
BITS = {"Q2_K": 2, "Q3_K_S": 3, "Q3_K_M": 3, "Q3_K_L": 3, "Q4_0": 4, "Q4_K_S": 4, "Q4_K_M": 4,
        "Q5_0": 5, "Q5_K_S": 5, "Q5_K_M": 5, "Q6_K": 6, "Q8_0": 8}
# TheBloke's model cards, decimal GB, in QUANTS order.
_GB_34B = [14.21, 14.61, 16.28, 17.77, 19.05, 19.15, 20.22, 23.24, 23.24, 23.84, 27.68, 35.86]
_GB_13B = [5.43, 5.66, 6.34, 6.93, 7.37, 7.41, 7.87, 8.97, 8.97, 9.23, 10.68, 13.83]
_GB_7B = [2.83, 2.95, 3.30, 3.60, 3.83, 3.86, 4.08, 4.65, 4.65, 4.78, 5.53, 7.16]
# The repositories' file listings (decimal GB); only the quants published there.
_GB_QWEN_15B = {"Q2_K": 0.676, "Q3_K_S": 0.761, "Q3_K_M": 0.824, "Q3_K_L": 0.880, "Q4_K_S": 0.940,
                "Q4_K_M": 0.986, "Q5_K_S": 1.10, "Q5_K_M": 1.13, "Q6_K": 1.27, "Q8_0": 1.65}
_GB_DS_13B = {"Q2_K": 0.632, "Q3_K_S": 0.659, "Q3_K_M": 0.705, "Q3_K_L": 0.745, "Q4_0": 0.776,
              "Q4_K_S": 0.815, "Q4_K_M": 0.874, "Q5_0": 0.936}


@dataclass
class Shape:
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_vocab: int


SHAPE_34B = Shape(48, 8192, 64, 8, 32000)
SHAPE_13B = Shape(40, 5120, 40, 40, 32016)
SHAPE_7B = Shape(32, 4096, 32, 32, 32016)
SHAPE_QWEN_05B = Shape(24, 896, 14, 2, 151936)
SHAPE_QWEN_15B = Shape(28, 1536, 12, 2, 151936)
SHAPE_QWEN_7B = Shape(28, 3584, 28, 4, 152064)
SHAPE_DS_13B = Shape(24, 2048, 16, 16, 32256)
SHAPE_DS_67B = Shape(32, 4096, 32, 32, 32256)


@dataclass
class ModelEntry:
    key: str                 # phind-v2
    name: str
    repo: str
    file_pattern: str        # filename with {quant}
    prompt_format: str
    license: str
    humaneval: float         # published pass@1, percent
    humaneval_source: str
    shape: Shape
    sizes_gb: list[float] | dict[str, float]   # in QUANTS order, or only the quants published
    infill: bool = False     # the family has fill-in-the-middle tokens
    tier: int = 0            # 0 = the product's main models, 1 = fallbacks, 2 = small models
    base: bool = False       # a base (completion) build: no chat, meant for completion at the cursor


@dataclass
class CatalogFile:
    id: str                  # phind-v2:Q4_K_M
    model: str
    name: str
    repo: str
    filename: str
    quant: str
    bits: int
    size_bytes: int
    prompt_format: str
    license: str
    humaneval: float
    infill: bool
    tier: int
    base: bool = False
    sha256: str | None = None
    size_source: str = "model card"
    shape: Shape = field(default_factory=lambda: SHAPE_34B)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("shape")
        return d


MODELS = [
    ModelEntry("phind-v2", "Phind-CodeLlama-34B-v2", "TheBloke/Phind-CodeLlama-34B-v2-GGUF",
               "phind-codellama-34b-v2.{quant}.gguf", "phind-v2", LLAMA2, 73.8,
               "huggingface.co/Phind/Phind-CodeLlama-34B-v2", SHAPE_34B, _GB_34B),
    ModelEntry("phind-v1", "Phind-CodeLlama-34B-v1", "TheBloke/Phind-CodeLlama-34B-v1-GGUF",
               "phind-codellama-34b-v1.{quant}.gguf", "phind-v1", LLAMA2, 67.6,
               "huggingface.co/Phind/Phind-CodeLlama-34B-v1", SHAPE_34B, _GB_34B),
    ModelEntry("phind-python-v1", "Phind-CodeLlama-34B-Python-v1",
               "TheBloke/Phind-CodeLlama-34B-Python-v1-GGUF",
               "phind-codellama-34b-python-v1.{quant}.gguf", "phind-v1", LLAMA2, 69.5,
               "huggingface.co/Phind/Phind-CodeLlama-34B-Python-v1", SHAPE_34B, _GB_34B),
    ModelEntry("codellama-13b-instruct", "Code Llama 13B Instruct",
               "TheBloke/CodeLlama-13B-Instruct-GGUF", "codellama-13b-instruct.{quant}.gguf",
               "chat", LLAMA2, 42.7, "Code Llama paper, Table 2", SHAPE_13B, _GB_13B,
               infill=True, tier=1),
    ModelEntry("codellama-7b-instruct", "Code Llama 7B Instruct",
               "TheBloke/CodeLlama-7B-Instruct-GGUF", "codellama-7b-instruct.{quant}.gguf",
               "chat", LLAMA2, 34.8, "Code Llama paper, Table 2", SHAPE_7B, _GB_7B,
               infill=True, tier=1),
    ModelEntry("qwen2.5-coder-7b-instruct", "Qwen2.5-Coder 7B Instruct",
               "mradermacher/Qwen2.5-Coder-7B-Instruct-GGUF", "Qwen2.5-Coder-7B-Instruct.{quant}.gguf",
               "chat", APACHE2, 88.4, QWEN_REPORT, SHAPE_QWEN_7B,
               {"Q3_K_M": 3.81, "Q4_K_S": 4.46, "Q4_K_M": 4.68, "Q5_K_S": 5.32, "Q6_K": 6.25, "Q8_0": 8.10},
               infill=True, tier=2),
    ModelEntry("qwen2.5-coder-1.5b-instruct", "Qwen2.5-Coder 1.5B Instruct",
               "mradermacher/Qwen2.5-Coder-1.5B-Instruct-GGUF", "Qwen2.5-Coder-1.5B-Instruct.{quant}.gguf",
               "chat", APACHE2, 70.7, QWEN_REPORT, SHAPE_QWEN_15B, _GB_QWEN_15B, infill=True, tier=2),
    ModelEntry("qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder 0.5B Instruct",
               "mradermacher/Qwen2.5-Coder-0.5B-Instruct-GGUF", "Qwen2.5-Coder-0.5B-Instruct.{quant}.gguf",
               "chat", APACHE2, 61.6, QWEN_REPORT, SHAPE_QWEN_05B, {"Q4_K_M": 0.398, "Q8_0": 0.531},
               infill=True, tier=2),
    ModelEntry("deepseek-coder-6.7b-instruct", "deepseek-coder 6.7B Instruct",
               "TheBloke/deepseek-coder-6.7B-instruct-GGUF", "deepseek-coder-6.7b-instruct.{quant}.gguf",
               "chat", DEEPSEEK, 78.6, DEEPSEEK_REPORT, SHAPE_DS_67B, _GB_7B, infill=True, tier=2),
    ModelEntry("deepseek-coder-1.3b-instruct", "deepseek-coder 1.3B Instruct",
               "TheBloke/deepseek-coder-1.3b-instruct-GGUF", "deepseek-coder-1.3b-instruct.{quant}.gguf",
               "chat", DEEPSEEK, 65.2, DEEPSEEK_REPORT, SHAPE_DS_13B, _GB_DS_13B, infill=True, tier=2),
    ModelEntry("qwen2.5-coder-1.5b", "Qwen2.5-Coder 1.5B (base)",
               "mradermacher/Qwen2.5-Coder-1.5B-GGUF", "Qwen2.5-Coder-1.5B.{quant}.gguf",
               "raw", APACHE2, 43.9, QWEN_REPORT, SHAPE_QWEN_15B, _GB_QWEN_15B, infill=True, tier=2,
               base=True),
    ModelEntry("qwen2.5-coder-0.5b", "Qwen2.5-Coder 0.5B (base)",
               "mradermacher/Qwen2.5-Coder-0.5B-GGUF", "Qwen2.5-Coder-0.5B.{quant}.gguf",
               "raw", APACHE2, 28.0, QWEN_REPORT, SHAPE_QWEN_05B, {"Q4_K_M": 0.398, "Q8_0": 0.531},
               infill=True, tier=2, base=True),
    ModelEntry("deepseek-coder-1.3b-base", "deepseek-coder 1.3B (base)",
               "TheBloke/deepseek-coder-1.3b-base-GGUF", "deepseek-coder-1.3b-base.{quant}.gguf",
               "raw", DEEPSEEK, 34.8, DEEPSEEK_REPORT, SHAPE_DS_13B, _GB_DS_13B, infill=True, tier=2,
               base=True),
]


def _overrides_path():
    return paths.config_dir() / "catalog-refresh.json"


def load_overrides() -> dict:
    try:
        return json.loads(_overrides_path().read_text())
    except (OSError, ValueError):
        return {}


def files() -> list[CatalogFile]:
    """Every file of every curated model, with refreshed sizes and hashes where known."""
    over = load_overrides().get("files", {})
    out = []
    for m in MODELS:
        sizes = m.sizes_gb.items() if isinstance(m.sizes_gb, dict) else zip(QUANTS, m.sizes_gb)
        for quant, gb in sizes:
            filename = m.file_pattern.format(quant=quant)
            f = CatalogFile(id=f"{m.key}:{quant}", model=m.key, name=m.name, repo=m.repo,
                            filename=filename, quant=quant, bits=BITS[quant],
                            size_bytes=int(round(gb * 1e9)), prompt_format=m.prompt_format,
                            license=m.license, humaneval=m.humaneval, infill=m.infill,
                            tier=m.tier, base=m.base, shape=m.shape)
            known = over.get(f"{m.repo}/{filename}")
            if known:
                f.size_bytes = known["size"]
                f.sha256 = known.get("sha256")
                f.size_source = "hub"
            out.append(f)
    return out


def infill_mark(f: CatalogFile, cache=None) -> bool:
    """Whether `f` can fill in the middle: what its model family is known for until the file is
    downloaded, then what the file's own tokenizer metadata declares (a re-packaged GGUF may
    lack the tokens its family has)."""
    from app.models import download, local

    path = download.cached_path(f.repo, f.filename, cache=cache)
    found = local.file_infill(path) if path is not None else None
    return f.infill if found is None else found


def find(file_id: str) -> CatalogFile:
    for f in files():
        if f.id.lower() == file_id.lower():
            return f
    raise KeyError(f"unknown model id {file_id!r}; see `llamadesk models list`")


def refresh(endpoint: str | None = None, token: str | bool | None = None) -> dict:
    """Sizes, sha256 and file lists from the hub's metadata (huggingface-hub's model_info)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    result = {"refreshed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": {},
              "repos": {}}
    for m in MODELS:
        info = api.model_info(m.repo, files_metadata=True)
        ggufs = []
        for s in info.siblings or []:
            if not s.rfilename.endswith(".gguf"):
                continue
            lfs = s.lfs
            size = (lfs.size if lfs else None) or s.size
            sha = lfs.sha256 if lfs else None
            result["files"][f"{m.repo}/{s.rfilename}"] = {"size": size, "sha256": sha}
            ggufs.append(s.rfilename)
        result["repos"][m.repo] = {"commit": info.sha, "files": sorted(ggufs)}
    write_atomic(paths.ensure(paths.config_dir()) / "catalog-refresh.json", json.dumps(result, indent=1))
    return result
