#!/usr/bin/env python3
"""Exports the small PyTorch models under test/fixtures/torch/ with torch.onnx.export.

These are real PyTorch exports (not graphs written by this project's builder), so the
tests of `fit`/`verify` on them see exactly what a user's exported model looks like:
dynamic batch, shape-computing subgraphs, Linear layers as Gemm or as MatMul with a
pre-transposed weight, BatchNorm folded into Conv, LayerNormalization at opset 17 or
decomposed at opset 13. Each model comes with `<name>.json`: a seeded input batch and
PyTorch's outputs for it.

Not part of the build or the tests: run it by hand when the fixtures must change
(Debian's python3-torch, PyTorch 1.13 CPU):

    /usr/bin/python3 scripts/torch-fixtures.py
"""
import json
import os

import torch
import torch.nn as nn

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


def randomise_bn(model, gen):
    # Running statistics away from (0, 1), so that folding them into the convs matters.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


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
    print(f"wrote {path}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    export("vit-opset17", TinyViT(), 17)
    torch.manual_seed(1)
    export("vit-opset13", TinyViT(), 13)
    torch.manual_seed(2)
    resnet = TinyResNet()
    randomise_bn(resnet, torch.Generator().manual_seed(3))
    export("resnet-opset13", resnet, 13)


if __name__ == "__main__":
    main()
