"""PyTorch CPU timings of the three training steps of the embedded default, at its exact shapes.

Random weights, fp32, python3 + torch only (no transformers). Each workload is a full optimiser
step: forward + backward + global-norm gradient clipping to 1.0 + Adam(β 0.9, 0.95, eps 1e-8).
Warm-up steps, then the median of the timed steps. Prints one JSON object on stdout.

Workloads (shapes from models/*/config.json, models/configs/*.yaml and apps/trainer/src/commands/*):

  lm4lv         `pnpm train lm4lv` (packages/adapters/src/loss.ts, packages/pipeline/src/lm4lv.ts):
                lm-wide Llama frozen (3 layers × 512, 16 heads of 32, SwiGLU 384, tied head; read
                from models/lm-wide/config.json, as tools/bench/src/train.ts does); adapter
                Linear(192→512) + de-adapter Linear(512→192) (biases) + 10 task tokens trainable
                (202,432 parameters). Batch 4 pairs. The MAE features
                (B, 65, 192) of LQ and HQ are random inputs (the step runs no MAE, see below).
                Loss = CE on the response text + MSE of de_adapter(final-norm hidden) on the HQ
                features, both shifted by one. Logits are computed for all T positions, as in the TS
                step (lm.forward returns (B, T, V); the loss gathers the CE rows).
  lm            `pnpm train lm` defaults (the model shape of models/configs/lm-wide.yaml): the same
                Llama, all 7,015,936 weights trainable, batch 8 windows of 128 (+1) tokens, mean
                next-token CE.
  mae_pretrain  `pnpm train mae --stage pretrain`: mae-tiny ViTMAE (64 px, patch 8), random masking
                at 0.75 by argsort of uniform noise (16 of 64 patches kept), encoder, decoder with
                mask tokens, MSE on the removed patches; all trainable but the two fixed sin-cos
                position embeddings. Batch 16 (models/configs/mae-tiny.yaml, what made mae-tiny;
                the CLI default is 32: --mae-batch 32).
  mae_finetune  `pnpm train mae --stage finetune` (spec §6): encoder frozen (run without grad), no
                masking, identity order, decoder (incl. decoder_pos_embed) trainable, L1 between the
                de-normalised reconstruction and the [0,1] image. Same batch.

The LM4LV sequence (derived from packages/tokenizer/src/sequence.ts `buildSequence` of the pair
conversation, human "<Img><image></Img> <task>", gpt "<Img><image></Img>", tokenised with
models/lm-wide's tokenizer; checked by running buildSequence on it):

    pos 0        <s>
    pos 1-5      "### Human: <Img>"          → ### | ĠHuman | : | Ġ | <Img>            (5 tokens)
    pos 6-70     LQ image, 65 visual tokens  (1 + (64/8)² = 65: CLS + 64 patches)
    pos 71-72    "</Img> "                   → </Img> | Ġ                             (2)
    pos 73-82    10 task tokens
    pos 83-88    "\\n### Assistant: <Img>"   → Ċ | ### | ĠAssistant | : | Ġ | <Img>   (6; "<Img>" labelled)
    pos 89-153   HQ image, 65 visual tokens
    pos 154-156  "</Img>\\n###"              → </Img> | Ċ | ###                      (3, labelled)

  T = 157 (models/lm4lv-tiny/README.md says 163; the current tokenizer gives 157).
  CE:  labels at positions 88, 154, 155, 156 → logit rows 87, 153, 154, 155 (4 per sample).
  MSE: hidden rows 88..152 (65 per sample) regress HQ tokens 0..64.
Override with --lm4lv-pieces (text-piece lengths) / --visual-tokens / --task-tokens.

Threads: --threads sets torch's intra-op (OpenMP) pool; OpenBLAS-pthread keeps its own pool, which
torch.set_num_threads does not reach, so it is set through openblas_set_num_threads (--blas-threads,
default = --threads). Both pools busy-wait after each parallel region (GOMP's default spin), which on
a 2-core machine shared with other jobs can make 2 threads many times slower than 1:
--omp-wait-policy passive sets OMP_WAIT_POLICY before torch loads. The JSON records the load average
before and after the run so a contended run shows.

usage: /usr/bin/python3 train_bench.py [--threads 2] [--steps 5] [--warmup 2] [--only lm4lv,lm,...]
                                       [--blas-threads N] [--omp-wait-policy passive|active]
"""
import argparse
import ctypes
import json
import math
import os
import re
import statistics
import sys
import time


def _early_env():
    """OMP_WAIT_POLICY must be in the environment before libgomp loads (with torch)."""
    for i, arg in enumerate(sys.argv):
        value = arg.split("=", 1)[1] if arg.startswith("--omp-wait-policy=") else sys.argv[i + 1] if arg == "--omp-wait-policy" and i + 1 < len(sys.argv) else None
        if value:
            os.environ["OMP_WAIT_POLICY"] = value.upper()


_early_env()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# --- configurations (models/lm-wide/config.json, models/mae-tiny/config.json) ------------------

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def read_llama_config(path):
    """The fields this script's Llama uses, from an HF config.json. The module below has one k/v head
    per query head and a tied output head, so a config without those is refused, not silently changed."""
    with open(path) as f:
        c = json.load(f)
    heads = c["num_attention_heads"]
    cfg = dict(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
               num_hidden_layers=c["num_hidden_layers"], num_attention_heads=heads,
               num_key_value_heads=c.get("num_key_value_heads", heads),
               head_dim=c.get("head_dim") or c["hidden_size"] // heads,
               rms_norm_eps=c.get("rms_norm_eps", 1e-5), rope_theta=float(c.get("rope_theta", 10000.0)),
               tie_word_embeddings=c.get("tie_word_embeddings", False))
    if cfg["num_key_value_heads"] != heads or not cfg["tie_word_embeddings"]:
        raise ValueError(f"{path}: train_bench.py builds multi-head attention with tied embeddings only, "
                         f"got {cfg['num_key_value_heads']} k/v heads for {heads} heads, tie_word_embeddings={cfg['tie_word_embeddings']}")
    return cfg


# the embedded default's LM: vocab 4096, hidden 512, 3 layers, 16 heads (16 k/v) of 32, SwiGLU 384, tied head
LM_WIDE = read_llama_config(os.path.join(REPO, "models", "lm-wide", "config.json"))
MAE_TINY = dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=6, intermediate_size=768,
                layer_norm_eps=1e-6, image_size=64, patch_size=8, num_channels=3,
                decoder_hidden_size=128, decoder_num_hidden_layers=4, decoder_num_attention_heads=4,
                decoder_intermediate_size=512, mask_ratio=0.75)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- Llama (RMSNorm, RoPE, MHA, SwiGLU, tied embeddings) ----------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.heads, self.hd = c["hidden_size"], c["num_attention_heads"], c["head_dim"]
        self.ln1, self.ln2 = RMSNorm(d, c["rms_norm_eps"]), RMSNorm(d, c["rms_norm_eps"])
        self.q = nn.Linear(d, self.heads * self.hd, bias=False)
        self.k = nn.Linear(d, self.heads * self.hd, bias=False)
        self.v = nn.Linear(d, self.heads * self.hd, bias=False)
        self.o = nn.Linear(self.heads * self.hd, d, bias=False)
        self.gate = nn.Linear(d, c["intermediate_size"], bias=False)
        self.up = nn.Linear(d, c["intermediate_size"], bias=False)
        self.down = nn.Linear(c["intermediate_size"], d, bias=False)

    def forward(self, x, cos, sin, causal):  # x (B, T, C)
        B, T, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.heads, self.hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.k(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = torch.softmax((q * (1.0 / math.sqrt(self.hd))) @ k.transpose(-2, -1) + causal, dim=-1)  # (B, H, T, T)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.heads * self.hd)
        x = x + self.o(y)
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.blocks = nn.ModuleList([LlamaBlock(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        hd = c["head_dim"]
        self.register_buffer("inv_freq", 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)
        for name, p in self.named_parameters():  # HF init: N(0, 0.02), norms 1
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, embeds):  # (B, T, C) → final-norm hidden (B, T, C), logits (B, T, V)
        T = embeds.shape[1]
        freqs = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # (1, 1, T, hd)
        causal = torch.full((T, T), float("-inf")).triu(1)[None, None]  # (1, 1, T, T)
        x = embeds
        for b in self.blocks:
            x = b(x, cos, sin, causal)
        h = self.norm(x)
        return h, h @ self.embed.weight.t()  # tied head


# --- ViTMAE (HF ViTMAEForPreTraining layout) ---------------------------------------------------

def sincos_2d(dim, grid, cls=True):
    """MAE's fixed 2-D sin-cos position embedding, (1 + grid², dim) with a zero CLS row."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1)[:, None] * omega[None, :]
        return torch.cat([out.sin(), out.cos()], dim=1)
    gh, gw = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    emb = torch.cat([one_d(dim // 2, gw), one_d(dim // 2, gh)], dim=1)  # (grid², dim)
    if cls:
        emb = torch.cat([torch.zeros(1, dim, dtype=torch.float64), emb], dim=0)
    return emb.float()[None]


class ViTLayer(nn.Module):
    def __init__(self, dim, heads, mlp, eps):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)  # qkv_bias
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        hd = D // self.heads
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.heads, hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.heads, hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.heads, hd).transpose(1, 2)
        att = torch.softmax((q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1), dim=-1)  # (B, H, T, T)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViTMAE(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, dd, p, g = c["hidden_size"], c["decoder_hidden_size"], c["patch_size"], c["image_size"] // c["patch_size"]
        self.p, self.g, self.ch, self.mask_ratio = p, g, c["num_channels"], c["mask_ratio"]
        eps = c["layer_norm_eps"]
        self.patch_embed = nn.Conv2d(c["num_channels"], d, p, stride=p)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(sincos_2d(d, g), requires_grad=False)  # fixed
        self.encoder = nn.ModuleList([ViTLayer(d, c["num_attention_heads"], c["intermediate_size"], eps) for _ in range(c["num_hidden_layers"])])
        self.enc_norm = nn.LayerNorm(d, eps=eps)
        self.dec_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.dec_pos = nn.Parameter(sincos_2d(dd, g), requires_grad=False)  # fixed in pre-training
        self.decoder = nn.ModuleList([ViTLayer(dd, c["decoder_num_attention_heads"], c["decoder_intermediate_size"], eps) for _ in range(c["decoder_num_hidden_layers"])])
        self.dec_norm = nn.LayerNorm(dd, eps=eps)
        self.dec_pred = nn.Linear(dd, p * p * c["num_channels"])

    def patchify(self, px):  # (B, C, S, S) → (B, N, p·p·C), HF order (row, col, channel last)
        B, p, g = px.shape[0], self.p, self.g
        x = px.reshape(B, self.ch, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, g * g, p * p * self.ch)

    def unpatchify(self, x):  # (B, N, p·p·C) → (B, C, S, S)
        B, p, g = x.shape[0], self.p, self.g
        x = x.reshape(B, g, g, p, p, self.ch).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, self.ch, g * p, g * p)

    def encode(self, px, noise=None):  # → (B, 1+K, D), mask (B, N), ids_restore (B, N)
        x = self.patch_embed(px).flatten(2).transpose(1, 2) + self.pos[:, 1:]  # (B, N, D)
        B, N, D = x.shape
        mask = ids_restore = None
        if noise is not None:  # random masking: keep the len_keep lowest-noise patches
            keep = int(N * (1 - self.mask_ratio))
            ids_shuffle = torch.argsort(noise, dim=1)
            ids_restore = torch.argsort(ids_shuffle, dim=1)
            x = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, D))  # (B, K, D)
            mask = torch.ones(B, N)
            mask[:, :keep] = 0
            mask = torch.gather(mask, 1, ids_restore)
        x = torch.cat([(self.cls_token + self.pos[:, :1]).expand(B, -1, -1), x], dim=1)
        for layer in self.encoder:
            x = layer(x)
        return self.enc_norm(x), mask, ids_restore

    def decode(self, feats, ids_restore=None):  # (B, 1+K, D) → (B, N, p·p·C)
        x = self.dec_embed(feats)  # (B, 1+K, Dd)
        if ids_restore is not None:
            B, N = ids_restore.shape
            tokens = torch.cat([x[:, 1:], self.mask_token.expand(B, N + 1 - x.shape[1], -1)], dim=1)  # (B, N, Dd)
            tokens = torch.gather(tokens, 1, ids_restore[:, :, None].expand(-1, -1, x.shape[2]))
            x = torch.cat([x[:, :1], tokens], dim=1)
        x = x + self.dec_pos
        for layer in self.decoder:
            x = layer(x)
        return self.dec_pred(self.dec_norm(x))[:, 1:]


def normalize(px01):
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (px01 - m) / s


def denormalize(px):
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return px * s + m


# --- the LM4LV training layout -------------------------------------------------------------------

def lm4lv_layout(n_vis=65, n_task=10, pieces=(5, 2, 6, 3)):
    """Positions of the pair sequence (see the module docstring). pieces: token counts of the four
    text pieces "### Human: <Img>", "</Img> ", "\\n### Assistant: <Img>", "</Img>\\n###"."""
    p0, p1, p2, p3 = pieces
    lq = 1 + p0
    task = lq + n_vis + p1
    hq = task + n_task + p2
    T = hq + n_vis + p3
    labelled = [hq - 1] + list(range(hq + n_vis, T))  # the response's "<Img>" and "</Img>\n###"
    return dict(T=T, lq=lq, task=task, hq=hq, n_vis=n_vis, n_task=n_task,
                ce_rows=[t - 1 for t in labelled],  # logits at t predict labels[t + 1]
                mse_rows=list(range(hq - 1, hq - 1 + n_vis)))  # hidden at hq-1+i → HQ token i


# --- workloads: each returns (params to optimise, step closure, info) ------------------------------

def count(params):
    return sum(p.numel() for p in params)


def build_lm4lv(a):
    L = lm4lv_layout(a.visual_tokens, a.task_tokens, tuple(int(x) for x in a.lm4lv_pieces.split(",")))
    B, T, V, C, Dv = a.lm4lv_batch, L["T"], LM_WIDE["vocab_size"], LM_WIDE["hidden_size"], MAE_TINY["hidden_size"]
    lm = Llama(LM_WIDE).requires_grad_(False)
    adapter, de_adapter = nn.Linear(Dv, C), nn.Linear(C, Dv)
    task_tokens = nn.Parameter(torch.zeros(L["n_task"], C))  # zero init, as LM4LVAdapters
    params = [*adapter.parameters(), *de_adapter.parameters(), task_tokens]
    ids = torch.randint(3, V, (B, T))  # text ids (placeholders are replaced below)
    lq, hq = torch.randn(B, L["n_vis"], Dv), torch.randn(B, L["n_vis"], Dv)  # cached MAE features
    ce_rows, mse_rows = torch.tensor(L["ce_rows"]), torch.tensor(L["mse_rows"])
    labels = torch.randint(3, V, (B, len(L["ce_rows"])))

    def loss():
        text = lm.embed(ids)  # (B, T, C), frozen table
        s = L
        embeds = torch.cat([
            text[:, :s["lq"]], adapter(lq), text[:, s["lq"] + s["n_vis"]:s["task"]],
            task_tokens.expand(B, -1, -1), text[:, s["task"] + s["n_task"]:s["hq"]],
            adapter(hq), text[:, s["hq"] + s["n_vis"]:],
        ], dim=1)  # (B, T, C)
        h, logits = lm(embeds)  # (B, T, C), (B, T, V)
        ce = F.cross_entropy(logits[:, ce_rows].reshape(-1, V), labels.reshape(-1))
        mse = F.mse_loss(de_adapter(h[:, mse_rows]), hq)
        return ce + mse

    frozen = count(lm.parameters())
    info = dict(batch=B, seq_len=T, visual_tokens=L["n_vis"], task_tokens=L["n_task"],
                ce_positions_per_sample=len(L["ce_rows"]), mse_positions_per_sample=len(L["mse_rows"]),
                vision_hidden=Dv, llm_hidden=C, vocab=V, logits_rows="all T (as the TS step)",
                trainable_params=count(params), frozen_params=frozen, unit="pairs", items_per_step=B)
    return params, loss, info


def build_lm(a):
    B, T, V = a.lm_batch, a.lm_seq_len, LM_WIDE["vocab_size"]
    lm = Llama(LM_WIDE)
    params = list(lm.parameters())
    ids = torch.randint(3, V, (B, T + 1))

    def loss():
        _, logits = lm(lm.embed(ids[:, :T]))
        return F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))

    info = dict(batch=B, seq_len=T, vocab=V, trainable_params=count(params), unit="tokens", items_per_step=B * T)
    return params, loss, info


def build_mae(a, finetune):
    B, S = a.mae_batch, MAE_TINY["image_size"]
    mae = ViTMAE(MAE_TINY)
    px01 = torch.rand(B, 3, S, S)
    N = (S // MAE_TINY["patch_size"]) ** 2
    if finetune:
        for name, p in mae.named_parameters():
            p.requires_grad_(name.startswith(("dec_", "decoder", "mask_token")))
        mae.dec_pos.requires_grad_(True)  # decoder_pos_embed is trained in stage 1b
        params = [p for p in mae.parameters() if p.requires_grad]

        def loss():
            with torch.no_grad():
                feats, _, _ = mae.encode(normalize(px01))  # (B, 1+N, D), no masking
            recon = mae.unpatchify(mae.decode(feats))  # (B, 3, S, S), normalised
            return (denormalize(recon) - px01).abs().mean()
    else:
        params = [p for p in mae.parameters() if p.requires_grad]  # all but the sin-cos tables

        def loss():
            px = normalize(px01)
            noise = torch.rand(B, N)
            feats, mask, ids_restore = mae.encode(px, noise)
            pred = mae.decode(feats, ids_restore)  # (B, N, p·p·C)
            per_patch = (pred - mae.patchify(px)).pow(2).mean(-1)  # (B, N)
            return (per_patch * mask).sum() / mask.sum()

    enc = sum(p.numel() for n, p in mae.named_parameters() if not n.startswith(("dec_", "decoder", "mask_token")))
    info = dict(batch=B, image_size=S, patch_size=MAE_TINY["patch_size"], patches=N,
                mask_ratio=0.0 if finetune else MAE_TINY["mask_ratio"],
                encoder_tokens=1 + N if finetune else 1 + int(N * (1 - MAE_TINY["mask_ratio"])),
                decoder_tokens=1 + N, loss="L1 (de-normalised vs [0,1])" if finetune else "masked MSE",
                trainable_params=count(params), total_params=count(mae.parameters()), encoder_params=enc,
                unit="images", items_per_step=B)
    return params, loss, info


WORKLOADS = {
    "lm4lv": build_lm4lv,
    "lm": build_lm,
    "mae_pretrain": lambda a: build_mae(a, finetune=False),
    "mae_finetune": lambda a: build_mae(a, finetune=True),
}


def time_steps(params, loss_fn, steps, warmup):
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times, last = [], float("nan")
    for _ in range(steps):
        t0 = time.perf_counter()
        last = step()
        times.append((time.perf_counter() - t0) * 1000)
    return times, last


# --- BLAS ------------------------------------------------------------------------------------------

def blas_libraries():
    """Shared BLAS/LAPACK libraries mapped into this process (what the dynamic linker really chose)."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if re.search(r"blas|lapack|mkl|blis|atlas", os.path.basename(path), re.I) and path not in libs:
                libs.append(path)
    return libs


def openblas_handle(libs):
    for path in libs:
        if "openblas" in os.path.basename(path):
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib
            except (OSError, AttributeError):
                pass
    return None


def gemm_gflops(n=1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return round(2 * n ** 3 / statistics.median(ts) / 1e9, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and the BLAS pool unless --blas-threads)")
    ap.add_argument("--blas-threads", type=int, default=None, help="openblas_set_num_threads (default: --threads)")
    ap.add_argument("--omp-wait-policy", choices=["passive", "active"], default=None, help="OMP_WAIT_POLICY for torch's OpenMP pool (default: the environment's)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per workload (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--only", default="", help=f"comma list of {','.join(WORKLOADS)} (default: all)")
    ap.add_argument("--lm4lv-batch", type=int, default=4, help="pairs per LM4LV step (pnpm train lm4lv default 4)")
    ap.add_argument("--visual-tokens", type=int, default=65, help="1 + (64/8)² for mae-tiny")
    ap.add_argument("--task-tokens", type=int, default=10)
    ap.add_argument("--lm4lv-pieces", default="5,2,6,3", help="token counts of the 4 text pieces of the pair template")
    ap.add_argument("--lm-batch", type=int, default=8, help="pnpm train lm default 8")
    ap.add_argument("--lm-seq-len", type=int, default=128, help="pnpm train lm default 128")
    ap.add_argument("--mae-batch", type=int, default=16, help="mae-tiny.yaml 16 (pnpm train mae CLI default 32)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    names = [n for n in a.only.split(",") if n] or list(WORKLOADS)
    for n in names:
        if n not in WORKLOADS:
            ap.error(f"unknown workload {n!r} (expected {', '.join(WORKLOADS)})")

    # BLAS threads are the library's own pool: torch.set_num_threads does not reach OpenBLAS-pthread.
    torch.set_num_threads(a.threads)
    libs = blas_libraries()
    ob = openblas_handle(libs)
    if ob is not None:
        ob.openblas_set_num_threads(a.blas_threads or a.threads)
    load_before = os.getloadavg()
    torch.manual_seed(a.seed)

    build = [l.strip() for l in torch.__config__.show().splitlines()]
    blas_info = next((m.group(1) for l in build for m in [re.search(r"BLAS_INFO=([^,\s]+)", l)] if m), None)
    blas_lines = [l.lstrip("- ") for l in build if re.search(r"\b(BLAS|LAPACK|MKL|OpenBLAS)\b", l) and not l.startswith("- Build settings")]
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpus": os.cpu_count(),
        "blas": {
            "build_blas_info": blas_info,
            "build_lines": blas_lines,
            "loaded": libs,
            "openblas_config": ob.openblas_get_config().decode() if ob else None,
            "openblas_core": ob.openblas_get_corename().decode() if ob else None,
            "openblas_threads": ob.openblas_get_num_threads() if ob else None,
            "gemm_1024_gflops": gemm_gflops(),
        },
        "steps": a.steps,
        "warmup": a.warmup,
        "optimizer": "Adam(0.9, 0.95, eps 1e-8) + clip_grad_norm 1.0, fp32",
        "workloads": {},
    }
    for n in names:
        params, loss_fn, info = WORKLOADS[n](a)
        times, last = time_steps(params, loss_fn, a.steps, a.warmup)
        ms = statistics.median(times)
        out["workloads"][n] = {
            "ms_per_step": round(ms, 2),
            "ms_min": round(min(times), 2),
            "ms_max": round(max(times), 2),
            f"{info['unit']}_per_s": round(info["items_per_step"] * 1000 / ms, 1),
            "last_loss": round(last, 4),
            **info,
        }
        del params, loss_fn
    out["loadavg_1min_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
