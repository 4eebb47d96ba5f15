"""A cheap one-character step for sampling, over the same weights as CharRNN.

Calling nn.LSTM for a single time step on CPU is dominated by per-call overhead (oneDNN re-packs
the weights every call). Here the weights are pre-transposed and the gates fused once at load:
layer 0's input projection becomes a (V, G) lookup table (embedding @ W_ih^T + biases), deeper
layers do one addmm over [x, h] @ [W_ih; W_hh]^T, and LSTM gate columns are reordered to
i, f, o, g so one sigmoid covers three gates.
"""
from __future__ import annotations

from typing import Any

import torch

from model.lstm import CharRNN


class FastStep:
    def __init__(self, model: CharRNN) -> None:
        cfg = model.cfg
        self.kind, self.L, self.H = cfg.model_type, cfg.num_layers, cfg.rnn_size
        H = self.H
        sd = {k: v.detach().float() for k, v in model.state_dict().items()}
        emb = sd["embed.weight"]
        self.table0 = torch.empty(0)  # layer 0's input part, one row per token: set below
        # per layer; layer 0 has no input weights or bias (its input part is table0), a non-GRU no b_hh
        self.w_cat: list[Any] = []
        self.w_hh: list[torch.Tensor] = []
        self.b: list[Any] = []
        self.b_hh: list[Any] = []
        for layer in range(self.L):
            w_ih, w_hh = sd[f"rnn.weight_ih_l{layer}"], sd[f"rnn.weight_hh_l{layer}"]
            b_ih, b_hh = sd[f"rnn.bias_ih_l{layer}"], sd[f"rnn.bias_hh_l{layer}"]
            if self.kind == "lstm":   # torch order i, f, g, o -> i, f, o, g
                perm = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
                w_ih, w_hh, b_ih, b_hh = w_ih[perm], w_hh[perm], b_ih[perm], b_hh[perm]
            if self.kind == "gru":    # the n gate needs W_hn h + b_hn apart from the input part
                b_in, b_rec = b_ih, b_hh
            else:
                b_in, b_rec = b_ih + b_hh, None
            if layer == 0:
                self.table0 = (emb @ w_ih.t() + b_in).contiguous()
                self.w_cat.append(None)
                self.b.append(None)
            else:
                self.w_cat.append(torch.cat([w_ih.t(), w_hh.t()], 0).contiguous() if self.kind != "gru" else None)
                self.b.append(b_in)
            self.w_hh.append(w_hh.t().contiguous())
            self.b_hh.append(b_rec)
            if self.kind == "gru" and layer > 0:
                self.w_cat[layer] = w_ih.t().contiguous()
        self.head_w = sd["head.weight"].t().contiguous()
        self.head_b = sd["head.bias"]

    def to(self, device) -> "FastStep":
        for name, val in list(vars(self).items()):
            if isinstance(val, torch.Tensor):
                setattr(self, name, val.to(device))
            elif isinstance(val, list):
                setattr(self, name, [v.to(device) if isinstance(v, torch.Tensor) else v for v in val])
        return self

    def zero_state(self, batch: int, device) -> list:
        z = lambda: torch.zeros(batch, self.H, device=device)  # noqa: E731
        return [(z(), z()) if self.kind == "lstm" else z() for _ in range(self.L)]

    @staticmethod
    def select(state: list, rows: torch.Tensor) -> list:
        pick = lambda t: t.index_select(0, rows)  # noqa: E731
        return [(pick(s[0]), pick(s[1])) if isinstance(s, tuple) else pick(s) for s in state]

    @staticmethod
    def expand(state: list, batch: int) -> list:
        rep = lambda t: t.expand(batch, -1).contiguous()  # noqa: E731
        return [(rep(s[0]), rep(s[1])) if isinstance(s, tuple) else rep(s) for s in state]

    def __call__(self, tokens: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """tokens (B,) int64, state per layer -> logits (B, V), new state."""
        H = self.H
        x = tokens   # the layer below's output from layer 1 on (layer 0 reads table0)
        new: list = []
        for layer in range(self.L):
            s = state[layer]
            h = s[0] if self.kind == "lstm" else s
            if self.kind == "gru":
                gi = self.table0[tokens] if layer == 0 else torch.addmm(self.b[layer], x, self.w_cat[layer])
                gh = torch.addmm(self.b_hh[layer], h, self.w_hh[layer])
                rz = torch.sigmoid(gi[:, :2 * H] + gh[:, :2 * H])
                n = torch.tanh(gi[:, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
                h = n + rz[:, H:] * (h - n)
                new.append(h)
            else:
                if layer == 0:
                    g = torch.addmm(self.table0[tokens], h, self.w_hh[0])
                else:
                    g = torch.addmm(self.b[layer], torch.cat([x, h], 1), self.w_cat[layer])
                if self.kind == "lstm":
                    sg = torch.sigmoid(g[:, :3 * H])
                    c = sg[:, H:2 * H] * s[1] + sg[:, :H] * torch.tanh(g[:, 3 * H:])
                    h = sg[:, 2 * H:3 * H] * torch.tanh(c)
                    new.append((h, c))
                else:
                    h = torch.tanh(g)
                    new.append(h)
            x = h
        return torch.addmm(self.head_b, x, self.head_w), new
