"""A tiny llama-architecture GGUF that declares fill-in-the-middle tokens, written with the
`gguf` package (the shape of ../shared/device/gen_model.py's `tiny`, with a small vocabulary and
random weights). Its output is noise: it exists to test prompt assembly and token handling
through the real llama.cpp, which the shipped test models (no FIM tokens) cannot.

    python -m tests.completion.tiny_fim OUT.gguf [qwen|codellama|starcoder]
"""
from __future__ import annotations

import string
import sys

import numpy as np

N_LAYER, N_EMBD, N_HEAD, N_FF = 2, 256, 4, 512

STYLES = {  # role -> token text, in the order the model cards list them
    "qwen": {"pre": "<|fim_prefix|>", "suf": "<|fim_suffix|>", "mid": "<|fim_middle|>",
             "pad": "<|fim_pad|>", "rep": "<|repo_name|>", "sep": "<|file_sep|>"},
    "starcoder": {"pre": "<fim_prefix>", "suf": "<fim_suffix>", "mid": "<fim_middle>",
                  "pad": "<fim_pad>", "rep": "<reponame>", "sep": "<file_sep>"},
    "codellama": {"pre": "<PRE>", "suf": "<SUF>", "mid": "<MID>", "eot": "<EOT>"},
}
WORDS = ["def", "return", "if", "else", "for", "in", "import", "class", "self", "None", "print"]


def vocabulary(style: str) -> tuple[list[str], list[int], dict[str, int]]:
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    types = [2, 3, 3] + [6] * 256
    ids = {}
    for role, text in STYLES[style].items():
        ids[role] = len(toks)
        toks.append(text)
        types.append(3)  # control: only the prompt's own markers become these tokens
    pieces = ["\u2581"] + [c for c in string.ascii_letters + string.digits + string.punctuation]
    pieces += ["\u2581" + w for w in WORDS] + ["\u2581\u2581\u2581\u2581"]
    for p in pieces:
        if p not in toks:
            toks.append(p)
            types.append(1)
    return toks, types, ids


def write(out: str, style: str = "qwen", seed: int = 0, ids: bool = True) -> str:
    """`ids=False` leaves out the FIM token-id keys: llama.cpp then finds the tokens by their
    text, as it does for older conversions (deepseek-coder's, Code Llama's)."""
    import gguf

    toks, types, fim_ids = vocabulary(style)
    vocab = len(toks)
    head_dim = N_EMBD // N_HEAD
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(out, "llama")
    w.add_name(f"tiny-fim-{style}")
    w.add_context_length(4096)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([float(len(s)) if t == 1 else 0.0 for s, t in zip(toks, types)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    # The ids llama.cpp reads for infill (the older prefix/suffix/middle keys are read too).
    key = {"pre": "fim_pre", "suf": "fim_suf", "mid": "fim_mid", "pad": "fim_pad",
           "rep": "fim_rep", "sep": "fim_sep", "eot": "eot"}
    for role, tid in (fim_ids.items() if ids else ()):
        w.add_uint32(f"tokenizer.ggml.{key[role]}_token_id", tid)

    def mat(name, rows, cols):
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32))

    def ones(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    mat("token_embd.weight", vocab, N_EMBD)
    ones("output_norm.weight", N_EMBD)
    mat("output.weight", vocab, N_EMBD)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        ones(p + "attn_norm.weight", N_EMBD)
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            mat(p + t + ".weight", N_EMBD, N_EMBD)
        ones(p + "ffn_norm.weight", N_EMBD)
        mat(p + "ffn_gate.weight", N_FF, N_EMBD)
        mat(p + "ffn_up.weight", N_FF, N_EMBD)
        mat(p + "ffn_down.weight", N_EMBD, N_FF)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


if __name__ == "__main__":
    print("wrote", write(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "qwen"))
