"""PyTorch CPU timings for the shapes of the ONNX benchmark (tools/bench/src/onnx.ts).

Own small fp32 versions of the architectures (random weights, no Hugging Face code):
ViT-MAE-Base encoder (224/16, no masking) and decoder (512 wide, 8 blocks), and a Llama
(hidden 768, 12 layers, 12 heads, MLP 2048, vocab 32000) with a KV cache.
Prints one JSON object: medians in milliseconds.

usage: python3 torch_bench.py [--threads 2] [--budget 4]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- ViT (pre-LN blocks, exact GELU) -------------------------------------------------------

class ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim, eps=1e-12)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=1e-12)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        hd = D // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q = q.view(B, T, self.heads, hd).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.heads, hd).transpose(1, 2)
        v = v.view(B, T, self.heads, hd).transpose(1, 2)
        att = torch.softmax((q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1), dim=-1)  # (B, H, T, T)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViTEncoder(nn.Module):
    def __init__(self, image=224, patch=16, dim=768, depth=12, heads=12, mlp=3072):
        super().__init__()
        n = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([ViTBlock(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, pixels):  # (B, 3, S, S) → (B, 1+N, D)
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2) + self.pos[:, 1:]
        x = torch.cat([(self.cls + self.pos[:, :1]).expand(x.shape[0], -1, -1), x], dim=1)
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


class ViTDecoder(nn.Module):
    def __init__(self, image=224, patch=16, enc_dim=768, dim=512, depth=8, heads=16, mlp=2048):
        super().__init__()
        self.patch, self.grid = patch, image // patch
        self.embed = nn.Linear(enc_dim, dim)
        self.pos = nn.Parameter(torch.randn(1, self.grid ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([ViTBlock(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.pred = nn.Linear(dim, patch * patch * 3)

    def forward(self, feats):  # (B, 1+N, De) → (B, 3, S, S)
        x = self.embed(feats) + self.pos
        for b in self.blocks:
            x = b(x)
        x = self.pred(self.norm(x))[:, 1:]  # (B, N, p·p·3)
        B, g, p = x.shape[0], self.grid, self.patch
        x = x.reshape(B, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, 3, g * p, g * p)


# --- Llama (RMSNorm, RoPE, SwiGLU, KV cache) -------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.ln1, self.ln2 = RMSNorm(dim), RMSNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(dim, mlp, bias=False)
        self.up = nn.Linear(dim, mlp, bias=False)
        self.down = nn.Linear(mlp, dim, bias=False)

    def forward(self, x, cos, sin, bias, past):  # x (B, T, C); past (K, V) (B, H, P, hd) or None
        B, T, C = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        att = torch.softmax((q * (1.0 / math.sqrt(self.hd))) @ k.transpose(-2, -1) + bias, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(y)
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h)), (k, v)


class Llama(nn.Module):
    def __init__(self, vocab=32000, dim=768, depth=12, heads=12, mlp=2048):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList([LlamaBlock(dim, heads, mlp) for _ in range(depth)])
        self.norm = RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        hd = dim // heads
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)))

    def forward(self, embeds, past=None):  # (B, T, C) → hidden (B, T, C), logits (B, T, V), cache
        B, T, _ = embeds.shape
        P = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(P, P + T, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # (1, 1, T, hd)
        bias = torch.full((T, P + T), -1e9).triu(P + 1)[None, None]  # causal
        x, cache = embeds, []
        for i, b in enumerate(self.blocks):
            x, kv = b(x, cos, sin, bias, None if past is None else past[i])
            cache.append(kv)
        h = self.norm(x)
        return h, self.head(h), cache


# --- timing ------------------------------------------------------------------------------------

def median_ms(fn, budget_s, min_runs=3, max_runs=50, warmup=1):
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or (len(times) < max_runs and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with torch.no_grad():
        enc, dec = ViTEncoder().eval(), ViTDecoder().eval()
        pixels = torch.randn(1, 3, 224, 224)
        feats = enc(pixels)
        out["vit_encode_ms"] = median_ms(lambda: enc(pixels), args.budget)
        out["vit_decode_ms"] = median_ms(lambda: dec(feats), args.budget)
        del enc, dec

        lm = Llama().eval()
        prompt = torch.randn(1, 200, 768) * 0.02
        out["llama_prefill_200_ms"] = median_ms(lambda: lm(prompt), args.budget, min_runs=2)
        _, _, cache = lm(prompt)
        step = torch.randn(1, 1, 768) * 0.02
        out["llama_decode_ctx200_ms"] = median_ms(lambda: lm(step, cache), args.budget, min_runs=5, warmup=2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
