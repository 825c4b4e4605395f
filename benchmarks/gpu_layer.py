"""A random-weight transformer layer in plain PyTorch, for ``gpu_kernels.py`` (imported only on a GPU machine).

The layer is built from a ``kernel_plan.LayerShape`` (read from a published config.json): RMSNorm, fused
QKV projection (with bias when the config has attention bias), rotary embedding, SDPA attention (GQA),
output projection, residual, RMSNorm, then a SwiGLU FFN, or for MoE a router, top-k softmax gating and the
experts as one grouped GEMM (``torch._grouped_mm`` where this torch has it and accepts the shapes) or else
a loop over the experts' token groups (one host synchronisation per step). BF16 throughout. What an
engine adds (fused kernels, paged KV, CUDA graphs) is not here: the layer measures what plain PyTorch
kernels reach, and ``note`` says which MoE path ran. Sliding-window layers (gpt-oss) are built as full
attention layers.
"""

from __future__ import annotations


def build_layer(torch, shape, dev):
    return Layer(torch, shape, dev)


class Layer:
    def __init__(self, torch, s, dev):
        self.torch, self.shape = torch, s
        bf = torch.bfloat16

        def w(*dims):
            return torch.randn(*dims, device=dev, dtype=bf) * dims[-1] ** -0.5

        q_out = (s.heads + 2 * s.kv_heads) * s.head_dim
        self.wqkv = w(q_out, s.hidden)
        self.bqkv = torch.zeros(q_out, device=dev, dtype=bf) if s.bias else None
        self.wo = w(s.hidden, s.heads * s.head_dim)
        self.n1 = torch.ones(s.hidden, device=dev, dtype=bf)
        self.n2 = torch.ones(s.hidden, device=dev, dtype=bf)
        if s.experts:
            self.router = w(s.experts, s.hidden)
            self.w_gu = w(s.experts, 2 * s.intermediate, s.hidden)
            self.w_d = w(s.experts, s.hidden, s.intermediate)
        else:
            self.w_gu = w(2 * s.intermediate, s.hidden)
            self.w_d = w(s.hidden, s.intermediate)
        inv = 1.0 / (10000.0 ** (torch.arange(0, s.head_dim, 2, device=dev, dtype=torch.float32) / s.head_dim))
        self.inv_freq = inv
        self.gqa_kw = self._gqa_kwarg()
        self.moe_path = "dense SwiGLU"
        if s.experts:
            self.moe_path = "grouped" if self._grouped_ok() else "loop"
        self.note = (f"plain PyTorch layer, FFN: {self.moe_path}"
                     + ("" if s.experts == 0 else f" ({s.experts} experts, top-{s.top_k})"))

    # -- pieces --------------------------------------------------------------------------------------
    def _gqa_kwarg(self) -> bool:
        torch = self.torch
        s = self.shape
        q = torch.zeros(1, s.heads, 1, s.head_dim, device=self.n1.device, dtype=torch.bfloat16)
        k = torch.zeros(1, s.kv_heads, 1, s.head_dim, device=self.n1.device, dtype=torch.bfloat16)
        try:
            torch.nn.functional.scaled_dot_product_attention(q, k, k, enable_gqa=True)
            return True
        except TypeError:
            return False

    def _norm(self, x, w):
        x32 = x.float()
        return (x32 * self.torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w

    def _rope(self, x, pos):
        torch = self.torch
        ang = pos[:, None].float() * self.inv_freq[None, :]
        cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)

    def _attend(self, q, k, v, causal):
        F = self.torch.nn.functional
        if self.gqa_kw:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=q.shape[1] != k.shape[1])
        r = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, k.repeat_interleave(r, 1), v.repeat_interleave(r, 1), is_causal=causal)

    def _qkv(self, h):
        s = self.shape
        y = h @ self.wqkv.t()
        if self.bqkv is not None:
            y = y + self.bqkv
        b, t = y.shape[0], y.shape[1]
        q, k, v = y.split([s.heads * s.head_dim, s.kv_heads * s.head_dim, s.kv_heads * s.head_dim], dim=-1)
        return (q.view(b, t, s.heads, s.head_dim).transpose(1, 2), k.view(b, t, s.kv_heads, s.head_dim).transpose(1, 2),
                v.view(b, t, s.kv_heads, s.head_dim).transpose(1, 2))

    def _ffn(self, h):
        torch = self.torch
        F = torch.nn.functional
        s = self.shape
        if not s.experts:
            g, u = (h @ self.w_gu.t()).chunk(2, dim=-1)
            return (F.silu(g) * u) @ self.w_d.t()
        x = h.reshape(-1, s.hidden)
        top_v, top_i = (x @ self.router.t()).topk(s.top_k, dim=-1)
        gate = torch.softmax(top_v.float(), dim=-1).to(x.dtype).flatten()
        flat = top_i.flatten()
        order = torch.argsort(flat)
        tok = order // s.top_k
        xs = x[tok]
        counts = torch.bincount(flat, minlength=s.experts)
        if self.moe_path == "grouped":
            offs = torch.cumsum(counts, 0).to(torch.int32)
            gu = torch._grouped_mm(xs, self.w_gu.transpose(1, 2), offs=offs)
            g, u = gu.chunk(2, dim=-1)
            ys = torch._grouped_mm(F.silu(g) * u, self.w_d.transpose(1, 2), offs=offs)
        else:
            ys = torch.empty_like(xs)
            start = 0
            for e, c in enumerate(counts.tolist()):  # the one host synchronisation of the step
                if c:
                    g, u = (xs[start:start + c] @ self.w_gu[e].t()).chunk(2, dim=-1)
                    ys[start:start + c] = (F.silu(g) * u) @ self.w_d[e].t()
                    start += c
        out = torch.zeros_like(x).index_add_(0, tok, ys * gate[order, None])
        return out.view_as(h)

    def _grouped_ok(self) -> bool:
        """Whether ``torch._grouped_mm`` exists and runs these expert shapes (on a small routed batch)."""
        torch = self.torch
        if not hasattr(torch, "_grouped_mm"):
            return False
        self.moe_path = "grouped"
        try:
            x = torch.randn(1, 64, self.shape.hidden, device=self.n1.device, dtype=torch.bfloat16)
            self._ffn(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            return True
        except (RuntimeError, TypeError, ValueError):
            return False

    # -- steps ------------------------------------------------------------------------------------------
    def prefill(self, x):
        """One causal sequence x: (1, T, hidden) -> (1, T, hidden)."""
        torch = self.torch
        t = x.shape[1]
        h = self._norm(x, self.n1)
        q, k, v = self._qkv(h)
        pos = torch.arange(t, device=x.device)
        q, k = self._rope(q, pos), self._rope(k, pos)
        a = self._attend(q, k, v, causal=True).transpose(1, 2).reshape(1, t, -1)
        x = x + a @ self.wo.t()
        return x + self._ffn(self._norm(x, self.n2))

    def decode(self, x, k_cache, v_cache):
        """B sequences of one new token each, x: (B, 1, hidden), attending to their KV caches (B, kv_heads,
        C, head_dim) whose last position receives the new token's K and V (in place)."""
        torch = self.torch
        b, c = x.shape[0], k_cache.shape[2]
        h = self._norm(x, self.n1)
        q, k, v = self._qkv(h)
        pos = torch.full((1,), c - 1, device=x.device)
        q, k = self._rope(q, pos), self._rope(k, pos)
        k_cache[:, :, c - 1:] = k
        v_cache[:, :, c - 1:] = v
        a = self._attend(q, k_cache, v_cache, causal=False).transpose(1, 2).reshape(b, 1, -1)
        x = x + a @ self.wo.t()
        return x + self._ffn(self._norm(x, self.n2))
