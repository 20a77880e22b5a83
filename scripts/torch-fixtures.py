#!/usr/bin/env python3
"""Exports the small PyTorch models under test/fixtures/torch/ with torch.onnx.export.

These are real PyTorch exports (not graphs written by this project's builder), so the
tests of `inspect`/`fit`/`verify`/`export-weights` on them see exactly what a user's
exported model looks like: dynamic batch, shape-computing subgraphs, Linear layers as
Gemm or as MatMul with a pre-transposed anonymous weight, BatchNorm folded into Conv,
LayerNormalization at opset 17 or decomposed at opset 13, equal initializers
deduplicated through Identity nodes, ops without a shape rule of this project
(HardSwish, Resize). Each model `<name>` comes with
- `<name>.json`: a seeded input batch and PyTorch's outputs for it;
- `<name>.safetensors`: the model's PyTorch state_dict (written by hand below, since
  the `safetensors` package is not a dependency), the reference for `export-weights`.

The family: a timm-shaped ViT (opsets 17 and 13), a torchvision-shaped ResNet, and at
opset 17 MobileNetV3-like (HardSwish, squeeze-excite, depthwise conv), ConvNeXt-like
(7x7 depthwise conv, channels-last LayerNorm, GELU, layer scale), Swin-like (shifted
windows with torch.roll, relative position bias), FPN-like (nearest upsampling between
convolutions, SiLU), an untrained nn.TransformerEncoder (its two layers are deep
copies, so the exporter merges all their equal tensors) and a model with tied Linear
weights (one applied to tokens, exported as MatMul; one to pooled features, as Gemm).

Not part of the build or the tests: run it by hand when the fixtures must change
(Debian's python3-torch, PyTorch 1.13 CPU):

    /usr/bin/python3 scripts/torch-fixtures.py

With `--check-weights NAME WEIGHTS.safetensors OUTPUTS.json` it loads weights exported
by `denoiserep export-weights` into fixture NAME's PyTorch model with
`load_state_dict(..., strict=False)`, runs the fixture's input batch, and prints the
largest relative difference from OUTPUTS.json (the fused ONNX model's flattened outputs
on that batch) with the missing and unexpected keys.
"""

import json
import os

import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch")


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        y = (a.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, t, d)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """A timm-shaped ViT: conv patch embedding, class token, position embedding."""

    def __init__(self, size=16, patch=4, dim=32, depth=2, heads=2, classes=5):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        tokens = (size // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    """torchvision-shaped: conv-bn stem, basic blocks, global pool, flatten, fc."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = Basic(8, 8, 1)
        self.layer2 = Basic(8, 16, 2)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SE(nn.Module):
    """Squeeze-excite: pooled channels through two 1x1 convs gate the feature map."""

    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, c, e):
        super().__init__()
        self.expand = nn.Sequential(
            nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.Hardswish()
        )
        self.dw = nn.Sequential(
            nn.Conv2d(e, e, 3, 1, 1, groups=e, bias=False), nn.BatchNorm2d(e), nn.Hardswish()
        )
        self.se = SE(e, 4)
        self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class TinyMobileNetV3(nn.Module):
    """HardSwish (an ONNX op at opset 14+), depthwise conv, squeeze-excite; BatchNorm at
    its initial statistics, so the folded conv biases are equal and get deduplicated."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()
        )
        self.block = InvertedResidual(8, 16)
        self.head = nn.Sequential(nn.Linear(8, 16), nn.Hardswish(), nn.Linear(16, classes))

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ConvNeXtBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.dwconv = nn.Conv2d(d, d, 7, padding=3, groups=d)
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.pwconv1 = nn.Linear(d, 4 * d)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * d, d)
        self.gamma = nn.Parameter(torch.full((d,), 0.5))  # layer scale

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last for the norm and Linears
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class TinyConvNeXt(nn.Module):
    def __init__(self, d=16, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, d, 4, 4)
        self.stages = nn.Sequential(ConvNeXtBlock(d), ConvNeXtBlock(d))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(self.norm(x.mean([-2, -1])))


def window_partition(x, ws):
    n, h, w, c = x.shape
    x = x.view(n, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(x, ws, h, w):
    c = x.shape[-1]
    x = x.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class WindowAttention(nn.Module):
    """Attention within windows plus a learned relative position bias (Swin)."""

    def __init__(self, d, ws, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.relative_position_bias_table = nn.Parameter(
            torch.randn((2 * ws - 1) ** 2, heads) * 0.02
        )
        ij = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
        coords = torch.stack(ij).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1])

    def forward(self, x, mask):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        a = a + bias.view(t, t, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            a = a.view(b // nw, nw, self.heads, t, t) + mask.unsqueeze(1).unsqueeze(0)
            a = a.view(-1, self.heads, t, t)
        y = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class SwinBlock(nn.Module):
    def __init__(self, d, res, ws, shift, heads):
        super().__init__()
        self.res, self.ws, self.shift = res, ws, shift
        self.norm1 = nn.LayerNorm(d)
        self.attn = WindowAttention(d, ws, heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        if shift:
            # Tokens that the cyclic shift brings together from different regions must not
            # attend to each other.
            img = torch.zeros(1, res, res, 1)
            cnt = 0
            for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                    img[:, hs, wsl, :] = cnt
                    cnt += 1
            mw = window_partition(img, ws).squeeze(-1)
            m = mw.unsqueeze(1) - mw.unsqueeze(2)
            self.register_buffer(
                "attn_mask", m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)
            )
        else:
            self.attn_mask = None

    def forward(self, x):
        n, t, d = x.shape
        h = w = self.res
        y = self.norm1(x).view(n, h, w, d)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, self.ws), self.attn_mask), self.ws, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(n, t, d)
        return x + self.mlp(self.norm2(x))


class TinySwin(nn.Module):
    """8x8 tokens, windows of 4x4, a plain then a shifted (by 2) block."""

    def __init__(self, d=16, classes=5):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, d, 2, 2)
        self.layers = nn.Sequential(SwinBlock(d, 8, 4, 0, 2), SwinBlock(d, 8, 4, 2, 2))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.layers(x)).mean(1))


class TinyFPN(nn.Module):
    """Three SiLU conv stages, 1x1 laterals, a nearest-upsampled top-down path."""

    def __init__(self, classes=5):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.c2 = nn.Conv2d(8, 16, 3, 2, 1)
        self.c3 = nn.Conv2d(16, 16, 3, 2, 1)
        self.lat1 = nn.Conv2d(8, 8, 1)
        self.lat2 = nn.Conv2d(16, 8, 1)
        self.lat3 = nn.Conv2d(16, 8, 1)
        self.out1 = nn.Conv2d(8, 8, 3, 1, 1)
        self.out2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        f1 = F.silu(self.c1(x))
        f2 = F.silu(self.c2(f1))
        f3 = F.silu(self.c3(f2))
        p3 = self.lat3(f3)
        p2 = self.lat2(f2) + F.interpolate(p3, scale_factor=2.0, mode="nearest")
        p1 = self.lat1(f1) + F.interpolate(p2, scale_factor=2.0, mode="nearest")
        o1 = F.silu(self.out1(p1)).mean([-2, -1])
        o2 = F.silu(self.out2(p2)).mean([-2, -1])
        return self.head(torch.cat([o1, o2], 1))


class TinyEncoder(nn.Module):
    """An untrained nn.TransformerEncoder: its layers are deep copies of one layer, with
    zero attention biases and unit/zero LayerNorm weights, so the exporter merges the
    equal tensors and routes them through Identity nodes."""

    def __init__(self, d=16, classes=5):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, 4)
        layer = nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.encoder(x).mean(1))


class TiedMLP(nn.Module):
    """Tied Linear weights: `dec` uses `enc`'s weight on tokens (MatMul, the transposed
    constant shared through an Identity), `proj_b` uses `proj_a`'s on pooled features
    (Gemm, both reading the same initializer)."""

    def __init__(self, d=16, classes=5):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, 4)
        self.enc = nn.Linear(d, d)
        self.dec = nn.Linear(d, d)
        self.dec.weight = self.enc.weight
        self.proj_a = nn.Linear(d, d)
        self.proj_b = nn.Linear(d, d)
        self.proj_b.weight = self.proj_a.weight
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = self.dec(F.gelu(self.enc(x))).mean(1)
        return self.head(self.proj_b(torch.tanh(self.proj_a(x))))


def randomise_bn(model, gen):
    # Running statistics away from (0, 1), so that folding them into the convs matters.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}


def save_safetensors(path, tensors):
    """Writes tensors in the safetensors format: u64 little-endian header length, a JSON
    header {name: {dtype, shape, data_offsets}} padded with spaces to 8 bytes, then the
    raw little-endian bytes. Tied parameters are written once per name, as state_dict
    lists them."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().cpu().contiguous().numpy().tobytes()
        header[name] = {
            "dtype": ST_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":"))
    head += " " * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head.encode())
        for c in chunks:
            f.write(c)


def export(name, model, opset, size=16):
    model.eval()
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(3, 3, size, size, generator=gen)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(
        model,
        x,
        path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
    )
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(
            {
                "torch": torch.__version__,
                "opset": opset,
                "inputShape": list(x.shape),
                "input": [round(v, 7) for v in x.flatten().tolist()],
                "outputShape": list(y.shape),
                "output": [round(v, 7) for v in y.flatten().tolist()],
            },
            f,
        )
        f.write("\n")
    save_safetensors(os.path.join(OUT, f"{name}.safetensors"), model.state_dict())
    print(f"wrote {path}")


def tiny_resnet():
    resnet = TinyResNet()
    randomise_bn(resnet, torch.Generator().manual_seed(3))
    return resnet


# name: (seed, constructor, opset)
FIXTURES = {
    "vit-opset17": (0, TinyViT, 17),
    "vit-opset13": (1, TinyViT, 13),
    "resnet-opset13": (2, tiny_resnet, 13),
    "mobilenetv3-opset17": (4, TinyMobileNetV3, 17),
    "convnext-opset17": (5, TinyConvNeXt, 17),
    "swin-opset17": (6, TinySwin, 17),
    "fpn-opset17": (7, TinyFPN, 17),
    "encoder-opset17": (8, TinyEncoder, 17),
    "tied-opset17": (9, TiedMLP, 17),
}


def build(name):
    seed, make, opset = FIXTURES[name]
    torch.manual_seed(seed)
    return make().eval(), opset


def load_safetensors(path):
    """Reads a safetensors file into a dict of tensors (safetensors.torch.load_file's job,
    by hand since that package is not a dependency)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    dtypes = {v: k for k, v in ST_DTYPES.items()}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dtypes[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def check_weights(name, weights, expected):
    """Loads weights written by `denoiserep export-weights` into the fixture's PyTorch
    model as the README shows, runs the fixture's input batch, and compares the output
    with `expected` (a JSON list of the fused ONNX model's outputs on that batch)."""
    model, _ = build(name)
    with open(os.path.join(OUT, f"{name}.json")) as f:
        fx = json.load(f)
    missing, unexpected = model.load_state_dict(load_safetensors(weights), strict=False)
    x = torch.tensor(fx["input"]).reshape(fx["inputShape"])
    with torch.no_grad():
        y = model(x).flatten()
    with open(expected) as f:
        ref = torch.tensor(json.load(f))
    err = ((y - ref).abs().max() / ref.abs().max()).item()
    print(json.dumps({"missing": missing, "unexpected": unexpected, "maxRelError": err}))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--check-weights":
        check_weights(*sys.argv[2:])
        return
    os.makedirs(OUT, exist_ok=True)
    for name in FIXTURES:
        model, opset = build(name)
        export(name, model, opset)


if __name__ == "__main__":
    main()
