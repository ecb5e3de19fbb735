#!/usr/bin/python3
"""The float reference of issue 18: bnas's training recipe in PyTorch (CPU).

Hidden layers: binary weights (sign; the gradient passes straight through to
the latent weights), [3x3 conv, zero padding | dense] -> [2x2 max-pool] ->
batch norm -> sign (clipped straight-through estimator); pixels scaled 1/255
before the first batch norm; classifier: binary dense layer times a learnable
scale (1e-3). Adam lr 1e-3, batch 256, cross-entropy, shuffled every epoch.

Prints one CSV line per epoch: network,threads,images,epoch,seconds,train_acc,test_acc.
Usage: torch_bnn.py TOPOLOGY [--epochs N] [--images N] [--threads N] [--seed N]
TOPOLOGY as bnas writes it: FC512-FC512, C64-MP2-C64-MP2-FC2048.
"""
import argparse, gzip, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class WeightSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return torch.where(w > 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, g):
        return g


class Net(nn.Module):
    def __init__(self, topo):
        super().__init__()
        self.layers = []
        c, h, w, first = 1, 28, 28, True
        parts = topo.split("-")
        i = 0
        mods = []
        while i < len(parts):
            p = parts[i]
            pool = i + 1 < len(parts) and parts[i + 1] == "MP2"
            if p[0] == "C":
                oc = int(p[1:])
                wt = nn.Parameter(torch.empty(oc, c, 3, 3).uniform_(-1, 1))
                mods.append(("conv", wt, nn.BatchNorm2d(oc, momentum=0.1, eps=1e-5), pool, first))
                c = oc
                if pool:
                    h, w = h // 2, w // 2
            else:
                n = int(p[2:])
                fan = c * h * w
                wt = nn.Parameter(torch.empty(n, fan).uniform_(-1, 1))
                mods.append(("fc", wt, nn.BatchNorm1d(n, momentum=0.1, eps=1e-5), False, first))
                c, h, w = n, 1, 1
            first = False
            i += 2 if pool else 1
        self.ws = nn.ParameterList([m[1] for m in mods])
        self.bns = nn.ModuleList([m[2] for m in mods])
        self.mods = mods
        self.out = nn.Parameter(torch.empty(10, c * h * w).uniform_(-1, 1))
        self.scale = nn.Parameter(torch.tensor(1e-3))

    def forward(self, x):
        for (kind, _, _, pool, first), wt, bn in zip(self.mods, self.ws, self.bns):
            wb = WeightSign.apply(wt)
            if kind == "conv":
                z = F.conv2d(x, wb, padding=1)
                if pool:
                    z = F.max_pool2d(z, 2)
            else:
                z = x.flatten(1) @ wb.t()
            if first:
                z = z / 255.0
            x = SignSTE.apply(bn(z))
        return self.scale * (x.flatten(1) @ WeightSign.apply(self.out).t())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("topology")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--images", type=int, default=60000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xs = torch.tensor(idx(f"{DATA}/train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[: a.images], dtype=torch.float32)
    ys = torch.tensor(idx(f"{DATA}/train-labels-idx1-ubyte.gz", 8)[: a.images], dtype=torch.long)
    xt = torch.tensor(idx(f"{DATA}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28), dtype=torch.float32)
    yt = torch.tensor(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz", 8), dtype=torch.long)
    net = Net(a.topology)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for ep in range(1, a.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xs))
        correct = 0
        for s in range(0, len(xs), 256):
            i = perm[s : s + 256]
            out = net(xs[i])
            loss = F.cross_entropy(out, ys[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (out.argmax(1) == ys[i]).sum().item()
        secs = time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            acc = sum((net(xt[k : k + 1000]).argmax(1) == yt[k : k + 1000]).sum().item() for k in range(0, 10000, 1000)) / 10000
        print(f"{a.topology},{a.threads},{len(xs)},{ep},{secs:.3f},{correct / len(xs):.4f},{acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
