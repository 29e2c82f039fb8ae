"""Real networks our users regress, written out in code (no downloads, no torchvision).

Each architecture follows its reference (MLPerf Tiny's Keras models, torchvision's
MobileNetV2 and ResNet-18, torchaudio's Wav2Letter, the ViT/DeiT recipe), with weights
prepared to look like a trained network's rather than left at a bare initialisation:

* seeded (``torch.manual_seed``), so the harness's cache key is the same on every run;
* initialised as the reference implementation does (Keras' he_normal or Glorot uniform,
  torchvision's Kaiming fan-out, ViT's truncated normal);
* normalisation affine parameters drawn around trained ranges instead of exactly 1 and 0
  (``_trained_like_norms``);
* smooth, low-frequency depthwise kernels (``_smooth_spatial_kernels``), residual
  branches ending in small BatchNorm scales (``_quiet_residual_branches``), and every
  other kernel shaped to the principal directions of the inputs it sees
  (``_align_with_data``), as training leaves them; a model may add traits of its own
  (``trained_like``: ViT's learned positions and head). Random kernels instead make a
  deep network chaotic: int8's rounding grows layer after layer until the fake-quant
  output is noise (4-12 dB SNR against float for MobileNets, ViT and the autoencoder,
  where trained networks give 20-40 dB, and now all give 16-61 dB);
* BatchNorm running statistics measured on realistic inputs (``_measure_batchnorm``):
  without that, a deep CNN's output shrinks to ~1e-9 and int8 turns it into all zeros.

Inputs are seeded random numbers shaped like the real preprocessing's output (MFCCs,
normalised images, log-mel frames); each model's docstring says which. ``REAL_MODELS``
maps each name to a ``RealModel`` entry: its task, inputs, weight-layer count and whether
it belongs to the cheap CI slice; ``entry.make()`` gives ``(model.eval(), example_inputs)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 (the usual alias)
from torch import nn

Inputs = tuple[torch.Tensor, ...]

# --------------------------------------------------------------------------- inputs

# ImageNet preprocessing (torchvision's Normalize) and the usual CIFAR-10 statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _upsample(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def photo_pixels(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Photo-like RGB pixels in [0, 1], shape ``[batch, 3, size, size]``.

    Random pixels are nothing like photos: real images are smooth, with most energy at
    low spatial frequencies and channels that move together. Each image is a base colour,
    a shared luminance field at two scales (coarse shapes, finer texture), a little
    colour variation and sensor noise, clipped to [0, 1] (measured over 64 images: mean
    0.50, std 0.18 within an image; natural photos are a little more contrasted).
    """
    g = generator
    base = torch.rand(batch, 3, 1, 1, generator=g) * 0.4 + 0.3
    coarse = _upsample(torch.randn(batch, 1, 4, 4, generator=g), size) * 0.18
    fine = _upsample(torch.randn(batch, 1, max(2, size // 8), max(2, size // 8), generator=g), size)
    colour = _upsample(torch.randn(batch, 3, 3, 3, generator=g), size) * 0.06
    noise = torch.randn(batch, 3, size, size, generator=g) * 0.015
    return (base + coarse + 0.08 * fine + colour + noise).clamp(0.0, 1.0)


def normalised_images(
    batch: int,
    size: int,
    generator: torch.Generator,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """``photo_pixels`` normalised per channel, as torchvision's ``Normalize`` does.

    With the ImageNet statistics the values span about [-2.1, 2.6].
    """
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (photo_pixels(batch, size, generator) - m) / s


def _smooth_time(x: torch.Tensor, width: int) -> torch.Tensor:
    """Moving average over the last dimension (frames of speech are correlated)."""
    kernel = torch.ones(1, 1, width) / width
    padding = (width // 2, width - 1 - width // 2)
    flat = F.pad(x.reshape(-1, 1, x.shape[-1]), padding, mode="replicate")
    return F.conv1d(flat, kernel).view(x.shape)


def speech_log_mel(
    batch: int, frames: int, mel_bins: int, generator: torch.Generator
) -> torch.Tensor:
    """Log-mel magnitudes of a spoken word, natural log, shape ``[batch, frames, mel_bins]``.

    As the speech-commands pipeline computes them (waveform scaled to peak 1, STFT
    magnitude, 40 mel bins over 20-4000 Hz, ``log(mel + 1e-6)``): a background floor
    around -3 (quiet room noise), and a word of random length and position where energy
    rises by 3-6 nats with a spectral tilt (low bins stronger) and two or three formant
    bumps that drift over time, plus smoothed fluctuations. Values span about [-5, 5].
    """
    g = generator
    t = torch.arange(frames, dtype=torch.float32)
    m = torch.arange(mel_bins, dtype=torch.float32) / mel_bins
    out = []
    for _ in range(batch):
        start = float(torch.rand(1, generator=g)) * 0.3 * frames
        length = (0.35 + 0.35 * float(torch.rand(1, generator=g))) * frames
        # A smooth on/off envelope of the word (rises and falls over ~3 frames).
        envelope = torch.sigmoid((t - start) / 1.5) * torch.sigmoid((start + length - t) / 1.5)
        level = 3.0 + 3.0 * float(torch.rand(1, generator=g))
        spectrum = level - 2.5 * m  # spectral tilt: speech energy falls with frequency
        frame_spectra = spectrum.expand(frames, mel_bins).clone()
        for _formant in range(2 + int(torch.randint(0, 2, (1,), generator=g))):
            centre = float(torch.rand(1, generator=g)) * 0.7 + 0.05
            drift = (torch.rand(1, generator=g) - 0.5) * 0.2 * (t / frames)
            frame_spectra += 1.5 * torch.exp(-(((m - centre - drift[:, None]) / 0.05) ** 2))
        floor = -3.0 - 0.8 * m + 0.3 * torch.randn(1, mel_bins, generator=g)
        noise = _smooth_time(torch.randn(mel_bins, frames, generator=g), 3).T * 0.5
        out.append(floor + envelope[:, None] * frame_spectra + noise)
    return torch.stack(out)


def mfcc_from_log_mel(log_mel: torch.Tensor, coefficients: int) -> torch.Tensor:
    """MFCCs as ``tf.signal.mfccs_from_log_mel_spectrograms`` computes them.

    An unnormalised DCT-II over the mel bins scaled by ``1/sqrt(2 * bins)``, keeping the
    first ``coefficients``. With 40 bins, c0 is ~8.9 times the mean log-mel value: over
    64 of ``speech_log_mel``'s utterances it spans [-33, 17], the other coefficients
    [-4, 10].
    """
    bins = log_mel.shape[-1]
    n = torch.arange(bins, dtype=torch.float32)
    k = torch.arange(coefficients, dtype=torch.float32)[:, None]
    basis = 2.0 * torch.cos(math.pi * k * (2 * n + 1) / (2 * bins)) / math.sqrt(2 * bins)
    return log_mel @ basis.T


def kws_mfcc(batch: int, generator: torch.Generator, frames: int = 49) -> torch.Tensor:
    """Keyword-spotting MFCCs: 1 s of audio, 40 ms windows every 20 ms (49 frames), 10
    coefficients from 40 mel bins; shape ``[batch, frames, 10]``, unnormalised."""
    return mfcc_from_log_mel(speech_log_mel(batch, frames, 40, generator), 10)


def cmvn(features: torch.Tensor, dim: int) -> torch.Tensor:
    """Cepstral mean and variance normalisation over ``dim`` (per utterance, per
    coefficient), as recurrent and ASR front ends apply before the network."""
    mean = features.mean(dim=dim, keepdim=True)
    std = features.std(dim=dim, keepdim=True).clamp_min(1e-3)
    return (features - mean) / std


def machine_log_mel_db(
    batch: int, generator: torch.Generator, frames: int = 5, mel_bins: int = 128
) -> torch.Tensor:
    """Anomaly-detection features: 5 consecutive frames of 128 log-mel bins in dB,
    flattened to ``[batch, 640]``.

    As the DCASE/MLPerf Tiny pipeline computes them (power mel spectrogram,
    ``10 * log10(mel + eps)``) for a machine's steady sound: a per-machine spectral
    profile falling from about -10 dB in low bins to about -45 dB in high ones, with a few
    harmonic peaks of +8-15 dB, and +-1.5 dB fluctuation from frame to frame. Values span
    about [-52, 5] dB (mean -29, std 11 over 64 samples).
    """
    g = generator
    m = torch.arange(mel_bins, dtype=torch.float32) / mel_bins
    out = []
    for _ in range(batch):
        profile = -10.0 - 35.0 * m**0.7 + 2.0 * torch.randn(mel_bins, generator=g)
        fundamental = 0.03 + 0.05 * float(torch.rand(1, generator=g))
        for harmonic in range(1, 6):
            height = 8.0 + 7.0 * float(torch.rand(1, generator=g))
            profile += height * torch.exp(-(((m - harmonic * fundamental) / 0.01) ** 2))
        frames_db = profile + 1.5 * torch.randn(frames, mel_bins, generator=g)
        out.append(frames_db.reshape(-1))
    return torch.stack(out)


def token_embeddings(batch: int, tokens: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """A transformer layer's input: embeddings of a sequence plus sinusoidal positions.

    Embeddings with per-token scale 0.7-1.3 (a trained embedding's rows differ in norm),
    plus the sinusoidal position encoding of "Attention Is All You Need" (values in
    [-1, 1]); shape ``[batch, tokens, dim]``, std about 0.9, values within about +-5.
    """
    g = generator
    scale = 0.7 + 0.6 * torch.rand(batch, tokens, 1, generator=g)
    emb = torch.randn(batch, tokens, dim, generator=g) * scale * 0.7
    position = torch.arange(tokens, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    pe = torch.zeros(tokens, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return emb + pe


# --------------------------------------------------------------------------- weights


def _he_normal_(weight: torch.Tensor) -> None:
    """Keras' ``he_normal``: truncated normal (at 2 std) with std sqrt(2 / fan_in)."""
    fan_in = weight[0].numel()
    # Keras divides by the truncated distribution's std (0.8796) so the result keeps
    # variance 2 / fan_in.
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def _keras_init(model: nn.Module, conv: str = "he_normal", dense: str = "glorot") -> None:
    """Initialise as the Keras reference does: zero biases, conv and dense kernels with
    ``he_normal`` or Glorot uniform (Keras' default)."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear):
            style = dense if isinstance(module, nn.Linear) else conv
            if style == "he_normal":
                _he_normal_(module.weight)
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _trained_like_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Give BatchNorm/LayerNorm affine parameters the spread of a trained network's.

    In trained CNNs and transformers (e.g. torchvision's ResNet-18 and MobileNetV2, DeiT)
    the scales mostly lie between ~0.3 and ~2 and the shifts within about +-1, varying
    channel to channel; a bare init leaves them at exactly 1 and 0, which hides per-channel
    scale handling. We draw scales from U(0.6, 1.4) and shifts from N(0, 0.2).
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.LayerNorm):
            if module.weight is None:
                continue
            with torch.no_grad():
                shape = module.weight.shape
                module.weight.copy_(0.6 + 0.8 * torch.rand(shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(shape, generator=generator))


def _dct_matrix(size: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (rows are frequencies 0..size-1)."""
    n = torch.arange(size, dtype=torch.float64)
    k = n[:, None]
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * size)) * math.sqrt(2.0 / size)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def _smooth_spatial_kernels(model: nn.Module, decay: float = 0.3) -> None:
    """Make depthwise kernels smooth and low-frequency, as trained ones are.

    Trained depthwise filters (MobileNetV1/V2, DS-CNN) are not white noise: most of a
    kernel's energy is in its mean (a blur or a centre-weighted blob) and first-order
    terms (an edge along one axis), little in the checkerboard-like high frequencies
    (their weights are highly correlated across the 3x3 window and across channels, which
    is what lets them be factorised, e.g. in blueprint-separable convolutions). A random
    3x3 kernel instead is mostly high frequency: on a smooth feature map (images and
    spectrograms are smooth, and so are the maps computed from them) its output is small
    for many channels, BatchNorm scales it back up, and with it the white rounding noise
    int8 adds at every layer; over a dozen depthwise layers that compounds into outputs
    that int8 cannot reproduce at all (4-7 dB fake-quant SNR), which no trained network
    does. Each kernel's 2-D DCT coefficient of frequency ``(u, v)`` is scaled by
    ``decay ** (u + v)`` and the kernel rescaled to its initial norm (so the
    reference's initialisation scale, e.g. He's, is kept). Deterministic: no draws.
    """
    for module in model.modules():
        if not isinstance(module, nn.Conv2d) or module.groups == 1:
            continue
        if (
            module.groups != module.in_channels
            or module.kernel_size[0] * module.kernel_size[1] == 1
        ):
            continue
        kh, kw = module.kernel_size
        ch, cw = _dct_matrix(kh), _dct_matrix(kw)
        mask = decay ** (torch.arange(kh)[:, None] + torch.arange(kw)[None, :]).float()
        with torch.no_grad():
            weight = module.weight
            coefficients = ch @ weight @ cw.T
            smooth = ch.T @ (coefficients * mask) @ cw
            norm = weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            smooth_norm = smooth.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            weight.copy_(smooth * norm / smooth_norm)


def _quiet_residual_branches(model: nn.Module, scale: float = 0.3) -> None:
    """Scale the last BatchNorm of every residual branch by ``scale``.

    A trained residual network's branches add a correction to their shortcut, not a signal
    as large as it: the last BatchNorm of each branch ends training with small scales
    (torchvision's ResNet-18/50 and MobileNetV2 have many of them around 0.1-0.5; Goyal et
    al. 2017 and torchvision's ``zero_init_residual`` even start them at 0 for that
    reason). With scales around 1 every block instead replaces its input by a new random
    function of it, and a deep stack of those is chaotic: a small perturbation, int8's
    rounding included, grows block after block. Blocks name the norm ending their branch
    with a ``branch_norm`` attribute.
    """
    for module in model.modules():
        norm = getattr(module, "branch_norm", None)
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.weight is not None:
            with torch.no_grad():
                norm.weight.mul_(scale)


def _layer_inputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What each output of ``module`` sees: its input patches (convolutions) or
    feature vectors (linear layers), one a row: ``[rows, fan_in]``."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(-1)
        kernel, dilation = (module.kernel_size[0], 1), (module.dilation[0], 1)
        padding, stride = (module.padding[0], 0), (module.stride[0], 1)
    else:
        kernel, dilation, padding, stride = (
            module.kernel_size,
            module.dilation,
            module.padding,
            module.stride,
        )
    cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


# Fan-ins up to this get a full eigendecomposition in ``_align_with_data``.
_FULL_SPECTRUM = 1024


def _align_with_data(
    model: nn.Module, sample: Callable[[torch.Generator], Inputs], power: float = 1.0
) -> None:
    """Shape each weight layer's kernels to the inputs it sees, as training does.

    Training moves a weight only along the gradient, the output error times the layer's
    input (``dW = delta x^T``): every update lies in the span of the inputs the layer
    actually receives, weighted by how strongly they vary there. The directions its inputs
    hardly use get no gradient and only weight decay, which shrinks them. So a trained
    layer's kernels respond mainly to its inputs' principal components: first-layer image
    filters are the smooth blobs and edges of natural-image PCA, depthwise filters are
    smooth (feature maps are), and pointwise/dense layers read the few directions in which
    the previous layer's channels co-vary; their weight matrices have decaying spectra
    (Martin and Mahoney 2019). A random kernel weighs every direction alike, including the
    many that carry only int8's rounding noise: each BatchNorm then rescales what little
    signal got through, noise included, and over twenty such layers the output is one
    int8 cannot reproduce (4-7 dB fake-quant SNR for MobileNetV1/V2), which no trained
    network does.

    For each layer in forward order, on one batch of 32 realistic inputs (BatchNorm in
    training mode, so every layer sees normalised inputs of the weights before it): the
    covariance of its input patches ``C = Q diag(l) Q^T``, and the kernel
    ``W <- W Q diag((l / l_max) ** (power / 2)) Q^T`` (with ``power`` 1, ``W C^(1/2)`` up
    to scale), each output's kernel rescaled so that its output keeps the variance the
    reference's initialisation gave it on those inputs (so a classifier's logits and an
    unnormalised stack's activations keep their scale). Deterministic: a seeded batch, no draws.
    The batch has 32 inputs because a layer after global pooling (a classifier) sees one
    row an input, and fewer rows than its fan-in would confine it to those few
    directions. Depthwise kernels are left to ``_smooth_spatial_kernels``: shaped from
    one batch's per-channel 3x3 patches instead, MobileNetV1's int8 output got worse.
    Recurrent layers keep PyTorch's initialisation (they quantize well as they are).
    """
    layers = (nn.Conv1d, nn.Conv2d, nn.Linear)

    def shape_to_inputs(module: nn.Module, args: tuple) -> None:
        if getattr(module, "groups", 1) > 1:
            return  # depthwise: _smooth_spatial_kernels
        rows = _layer_inputs(module, args[0].detach()).double()
        rows = rows - rows.mean(0)
        weight = module.weight
        w = weight.detach().reshape(weight.shape[0], -1).double()
        if rows.shape[1] <= _FULL_SPECTRUM:
            eigenvalues, q = torch.linalg.eigh(rows.T @ rows / rows.shape[0])
            eigenvalues = eigenvalues.clamp_min(0.0)
            gain = (eigenvalues / eigenvalues.max().clamp_min(1e-30)) ** (power / 2)
            projected = w @ q
            shaped = (projected * gain) @ q.T
            # Each output keeps the variance the initialised kernel gave it on these inputs.
            before = (projected**2 * eigenvalues).sum(dim=1, keepdim=True)
            after = ((projected * gain) ** 2 * eigenvalues).sum(dim=1, keepdim=True)
        else:
            # Wide fan-in (Wav2Letter's 8000, ResNet-18's 4608): the leading directions
            # only (a full decomposition takes minutes on a busy 2-core machine); the rest
            # are weighed as the weakest one kept, whose variance bounds theirs.
            _, singular, v = torch.svd_lowrank(rows, q=_FULL_SPECTRUM // 4, niter=2)
            eigenvalues = singular**2 / rows.shape[0]
            gain = (eigenvalues / eigenvalues.max().clamp_min(1e-30)) ** (power / 2)
            projected = w @ v
            rest = w - projected @ v.T
            shaped = (projected * gain) @ v.T + rest * gain[-1]
            before = (w @ rows.T).pow(2).mean(dim=1, keepdim=True)
            after = (shaped @ rows.T).pow(2).mean(dim=1, keepdim=True)
        scale = (before / after.clamp_min(1e-30)).sqrt()
        with torch.no_grad():
            weight.copy_((shaped * scale).reshape(weight.shape).to(weight.dtype))

    handles = [
        m.register_forward_pre_hook(shape_to_inputs)
        for m in model.modules()
        if isinstance(m, layers)
    ]
    generator = torch.Generator().manual_seed(2000)  # not the example or calibration seeds
    model.train()
    try:
        with torch.no_grad():
            model(*sample(generator))
    finally:
        for handle in handles:
            handle.remove()
    model.eval()


def _measure_batchnorm(
    model: nn.Module, sample: Callable[[torch.Generator], Inputs], passes: int = 4
) -> None:
    """Set every BatchNorm's running statistics from realistic inputs.

    Statistics reset, ``momentum=None`` (a cumulative average over the passes), a few
    forward passes in train mode, then ``eval()``: each layer is then normalised as it
    would be after training, and activations keep realistic ranges through the depth of
    the network.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    generator = torch.Generator().manual_seed(1000)  # not the example or calibration seeds
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(*sample(generator))
    model.eval()


# --------------------------------------------------------------------------- MLPerf Tiny


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting: DS-CNN (small), 12 classes (10 words, silence, unknown).

    Input: MFCCs ``[N, 1, 49, 10]`` (49 frames of 10 coefficients, unnormalised, c0 in
    about [-33, 17]; see ``kws_mfcc``). A 10x4 stride-2 convolution of 64 filters + BN +
    ReLU, four depthwise-separable blocks (3x3 depthwise + BN + ReLU, 1x1 pointwise 64 +
    BN + ReLU), average pooling over the 25x5 map and a dense layer to 12 logits (the
    reference's final softmax is left out: logits are what is compared; dropout is the
    identity at inference). Keras' default initialisation (Glorot uniform, zero biases).
    """

    def __init__(self, classes: int = 12, filters: int = 64) -> None:
        super().__init__()
        # TF's SAME padding pads 4 frames above and 5 below; a symmetric 5 gives the same
        # 25x5 map, one frame shifted (PyTorch convolutions pad symmetrically).
        layers: list[nn.Module] = [
            nn.Conv2d(1, filters, (10, 4), stride=2, padding=(5, 1)),
            nn.BatchNorm2d(filters),
            nn.ReLU(),
        ]
        for _ in range(4):
            layers += [
                nn.Conv2d(filters, filters, 3, padding=1, groups=filters),
                nn.BatchNorm2d(filters),
                nn.ReLU(),
                nn.Conv2d(filters, filters, 1),
                nn.BatchNorm2d(filters),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d((25, 5))
        self.classifier = nn.Linear(filters, classes)
        _keras_init(self, conv="glorot")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _ds_cnn_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (kws_mfcc(batch, generator).unsqueeze(1),)


class ResNet8Block(nn.Module):
    """A ResNet v1 basic block; a 1x1 strided projection shortcut when it downsamples
    (no BN on the shortcut, as in the MLPerf Tiny reference)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 else nn.Identity()
        self.relu = nn.ReLU()

    @property
    def branch_norm(self) -> nn.Module:
        """The norm ending the residual branch (see ``_quiet_residual_branches``)."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(self.shortcut(x) + y)


class ResNet8(nn.Module):
    """MLPerf Tiny image classification: ResNet-8 on CIFAR-10, 10 classes.

    Input: images ``[N, 3, 32, 32]`` normalised with the CIFAR-10 mean and std (about
    [-2, 2.1]). A 3x3 conv of 16 + BN + ReLU, three stages of one basic block (16, 32, 64
    filters; strides 1, 2, 2; the first with an identity shortcut, the others with 1x1
    projections), 8x8 average pooling and a dense layer to 10 logits (softmax left out).
    Keras' ``he_normal`` initialisation, as the reference sets it.
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stages = nn.Sequential(
            ResNet8Block(16, 16, 1), ResNet8Block(16, 32, 2), ResNet8Block(32, 64, 2)
        )
        self.pool = nn.AvgPool2d(8)
        self.classifier = nn.Linear(64, classes)
        _keras_init(self, conv="he_normal", dense="he_normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def _cifar_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (normalised_images(batch, 32, generator, CIFAR10_MEAN, CIFAR10_STD),)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class MobileNetV1VWW(nn.Module):
    """MLPerf Tiny visual wake words: MobileNetV1 at width 0.25, 96x96, 2 classes.

    Input: RGB images ``[N, 3, 96, 96]`` with pixels scaled to [0, 1] (the reference's
    ``rescale=1/255``). A 3x3 stride-2 conv of 8 + BN + ReLU, 13 depthwise-separable blocks
    (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU) widening 16, 32, 32, 64, 64,
    128 x6, 256, 256 with strides 1, 2, 1, 2, 1, 2, 1 x5, 2, 1; 3x3 average pooling and a
    dense layer to 2 logits. ``he_normal`` convolutions, a Glorot dense layer.
    """

    # (pointwise filters, depthwise stride) of the 13 blocks, width 0.25 applied.
    BLOCKS = (
        (16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2),
        (128, 1), (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1),
    )  # fmt: skip

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        layers = _conv_bn_relu(3, 8, 3, stride=2)
        channels = 8
        for filters, stride in self.BLOCKS:
            layers += _conv_bn_relu(channels, channels, 3, stride=stride, groups=channels)
            layers += _conv_bn_relu(channels, filters, 1)
            channels = filters
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(3)
        self.classifier = nn.Linear(channels, classes)
        _keras_init(self, conv="he_normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _vww_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (photo_pixels(batch, 96, generator),)


class AnomalyAutoencoder(nn.Module):
    """MLPerf Tiny anomaly detection: the fully-connected autoencoder (DCASE 2020 baseline).

    Input: ``[N, 640]``, 5 frames of 128 log-mel bins in dB (about [-55, 5]; see
    ``machine_log_mel_db``). Dense 128 + BN + ReLU x4, a bottleneck dense 8 + BN + ReLU,
    dense 128 + BN + ReLU x4, dense 640 (the reconstruction). Glorot uniform.
    """

    def __init__(self, features: int = 640) -> None:
        super().__init__()
        widths = [features, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(widths):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]
        layers.append(nn.Linear(128, features))
        self.net = nn.Sequential(*layers)
        _keras_init(self, dense="glorot")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _ad_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (machine_log_mel_db(batch, generator),)


# --------------------------------------------------------------------------- MobileNetV2


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of ``divisor``, never more than 10% below ``value``
    (the rule of the MobileNetV2 reference code)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion + BN + ReLU6 (when ``expand > 1``), 3x3 depthwise
    + BN + ReLU6, linear 1x1 projection + BN; a residual add when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    @property
    def branch_norm(self) -> nn.Module | None:
        """The projection's norm when the block adds its input (see
        ``_quiet_residual_branches``); ``None`` without a shortcut."""
        return self.block[-1] if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) as torchvision builds it, any width, 1000 classes.

    Input: ImageNet-normalised images ``[N, 3, H, W]`` (about [-2.1, 2.6]). A 3x3 stride-2
    stem, 17 inverted residual blocks in 7 stages (expansion t, channels c, repeats n,
    stride s: 1-16-1-1, 6-24-2-2, 6-32-3-2, 6-64-4-2, 6-96-3-1, 6-160-3-2, 6-320-1-1, the
    channels times the width, rounded to multiples of 8), a 1x1 conv to 1280 (kept at 1280
    below width 1), global average pooling and a linear classifier. torchvision's
    initialisation: Kaiming normal (fan-out) convolutions, N(0, 0.01) classifier.
    """

    STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        channels = _make_divisible(32 * width)
        last = _make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU6(),
        ]
        for expand, c, repeats, stride in self.STAGES:
            cout = _make_divisible(c * width)
            for i in range(repeats):
                layers.append(InvertedResidual(channels, cout, stride if i == 0 else 1, expand))
                channels = cout
        layers += [nn.Conv2d(channels, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(last, classes)  # dropout before it: identity at inference
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """ResNet basic block (torchvision): two 3x3 conv + BN, a 1x1 conv + BN projection
    shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    @property
    def branch_norm(self) -> nn.Module:
        """The norm ending the residual branch (see ``_quiet_residual_branches``)."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + self.downsample(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) as torchvision builds it, here at 64x64 for Tiny ImageNet
    (200 classes).

    Input: ImageNet-normalised images ``[N, 3, 64, 64]`` (about [-2.1, 2.6]). A 7x7
    stride-2 conv of 64 + BN + ReLU, 3x3 stride-2 max pooling, four stages of two basic
    blocks (64, 128, 256, 512 filters; strides 1, 2, 2, 2), global average pooling (over
    2x2 at this size) and a linear classifier. torchvision's initialisation: Kaiming normal
    (fan-out, ReLU) convolutions, PyTorch's default linear layer.
    """

    def __init__(self, classes: int = 200) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        channels = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(channels, cout, stride), BasicBlock(cout, cout, 1)]
            channels = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- recurrent


class RecurrentKWS(nn.Module):
    """Keyword spotting with one recurrent layer over MFCC frames, 12 classes.

    Input: ``[N, 49, 10]``, 49 frames of 10 MFCCs, CMVN-normalised per utterance (mean 0,
    std 1 per coefficient; recurrent gates saturate on raw MFCC ranges). ``nn.LSTM`` or
    ``nn.GRU`` with 64 units (batch first), its last hidden state into a dense layer to 12
    logits. PyTorch's default recurrent initialisation (uniform within 1/sqrt(64)); a Glorot
    uniform head (Keras' default; PyTorch's default head gives logits of std ~0.09 here,
    flatter than a trained classifier's).
    """

    def __init__(self, cell: str, features: int = 10, hidden: int = 64, classes: int = 12) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(features, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, classes)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, _ = self.rnn(x)
        return self.classifier(frames[:, -1])


def _kws_cmvn_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (cmvn(kws_mfcc(batch, generator), dim=1),)


# --------------------------------------------------------------------------- transformers


class EncoderLayer(nn.Module):
    """A transformer encoder block: ``nn.TransformerEncoderLayer`` with d_model 64, 4 heads,
    a 256-wide GELU feed-forward, post-norm (the original "Attention Is All You Need"
    layout, as BERT-style encoders use), no dropout.

    Input: ``[N, 32, 64]`` token embeddings plus sinusoidal positions (std about 1; see
    ``token_embeddings``). Output: the layer's ``[N, 32, 64]`` (LayerNorm'd, std about 1).
    PyTorch's initialisation (Xavier uniform attention projections).
    """

    def __init__(self, dim: int = 64, heads: int = 4, ffn: int = 256) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            dim, heads, ffn, dropout=0.0, activation="gelu", batch_first=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _encoder_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    return (token_embeddings(batch, 32, 64, generator),)


class ViTBlock(nn.Module):
    """Pre-norm ViT block, attention written out: LayerNorm, multi-head self-attention
    (one qkv projection, scaled dot product, softmax), residual; LayerNorm, GELU MLP,
    residual."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.qkv(self.norm1(x)).reshape(n, tokens, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-2, -1) * head_dim**-0.5, dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(n, tokens, dim)
        x = x + self.proj(attended)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class SmallViT(nn.Module):
    """A small vision transformer (the ViT/DeiT recipe, scaled down) on CIFAR-10 images.

    Input: CIFAR-normalised images ``[N, 3, 32, 32]`` (about [-2, 2.1]). A 4x4 stride-4
    patch embedding to 64 dims (64 patches), a class token and learned positions, two
    pre-norm blocks (4 heads, MLP 128), a final LayerNorm and a linear head on the class
    token to 10 logits. ViT's initialisation: truncated normal (std 0.02) for linear
    layers, class token and positions.
    """

    def __init__(self, dim: int = 64, depth: int = 2, heads: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 65, dim))
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def trained_like(self, sample: Callable[[torch.Generator], Inputs]) -> None:
        """Give the learned positions the scale of the patch tokens, and the head a
        trained head's scale.

        The positions (and with them the class token's slot) start at std 0.02 but are
        learned: in a trained ViT they end up about as large as the patch embeddings they
        are added to, or they could not tell positions apart next to the content. Left at
        0.02, the class token is ~50 times smaller than the patch tokens sharing its
        tensor, and int8's per-tensor scale rounds it, and the logits read from it, away.
        The head starts at std 0.02 (DeiT even at 0) and grows in training to give
        confident logits; it gets Glorot's scale here (std ~0.16), as the other models'
        heads have.
        """
        with torch.no_grad():
            patches = self.patch(*sample(torch.Generator().manual_seed(3000)))
            self.pos.mul_(float(patches.std()) / float(self.pos.std()))
            glorot = math.sqrt(2.0 / (self.head.in_features + self.head.out_features))
            self.head.weight.mul_(glorot / float(self.head.weight.std()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1)
        tokens = self.norm(self.blocks(tokens + self.pos))
        return self.head(tokens[:, 0])


# --------------------------------------------------------------------------- wav2letter


class Wav2Letter(nn.Module):
    """Wav2Letter (Collobert et al. 2016) over MFCCs, as torchaudio's ``Wav2Letter`` with
    ``input_type="mfcc"`` builds it: 11 1-D convolutions with ReLU, then log-softmax.

    Input: ``[N, 13, 100]``, 13 MFCCs (from 40 mel bins) of 100 frames (1 s at a 10 ms
    hop), CMVN-normalised per utterance. Layers: kernel 48 stride 2 to 250 channels, seven
    kernel-7 convs of 250, a kernel-32 conv to ``wide`` (2000 in the paper), a 1x1 conv of
    ``wide``, a 1x1 conv to 40 classes; each followed by ReLU. Output: ``[N, 40, 51]``
    log-probabilities per frame. ``wide`` is 500 here, a quarter of the paper's (the
    2000-wide layers hold 20 of its 23 M parameters and would dominate every build and
    run; the layer structure and kernel sizes are unchanged). He (Kaiming fan-in)
    initialisation: this stack has no normalisation, and PyTorch's default init shrinks
    activations ~2.5x per layer, to nothing after eleven.
    """

    def __init__(self, features: int = 13, classes: int = 40, wide: int = 500) -> None:
        super().__init__()
        specs = [(features, 250, 48, 2, 23)] + [(250, 250, 7, 1, 3)] * 7
        specs += [(250, wide, 32, 1, 16), (wide, wide, 1, 1, 0), (wide, classes, 1, 1, 0)]
        layers: list[nn.Module] = []
        for cin, cout, kernel, stride, padding in specs:
            layers += [nn.Conv1d(cin, cout, kernel, stride=stride, padding=padding), nn.ReLU()]
        self.acoustic_model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.acoustic_model(x), dim=1)


def _w2l_inputs(generator: torch.Generator, batch: int = 1) -> Inputs:
    log_mel = speech_log_mel(batch, 100, 40, generator)
    # [N, frames, 13] -> [N, 13, frames], contiguous: a program's inputs must be dense.
    return (cmvn(mfcc_from_log_mel(log_mel, 13), dim=1).transpose(1, 2).contiguous(),)


# --------------------------------------------------------------------------- registry


def weight_layers(model: nn.Module) -> int:
    """Layers with weights: convolutions, linear layers, recurrent layers (each of
    ``num_layers``) and attention input projections (``nn.MultiheadAttention``'s packed
    qkv; its output projection is a linear layer)."""
    count = 0
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
            count += 1
        elif isinstance(m, nn.RNNBase):
            count += m.num_layers
        elif isinstance(m, nn.MultiheadAttention):
            count += 1
    return count


@dataclasses.dataclass(frozen=True)
class RealModel:
    """One real network of the suite.

    Attributes:
        name: the test id.
        task: what the network does, and where it comes from.
        inputs: what its input is (shape, features, value range).
        layers: weight layers (see ``weight_layers``; checked by the suite).
        ci_slice: cheap enough for every CI run (``-m real_model_slice``).
        build: constructs the model (initialised, not yet prepared).
        sample: a batch of realistic inputs from a generator: ``sample(generator, batch)``.
    """

    name: str
    task: str
    inputs: str
    layers: int
    ci_slice: bool
    build: Callable[[], nn.Module]
    sample: Callable[..., Inputs]

    def model(self) -> nn.Module:
        """The prepared model, in eval mode: seeded weights, trained-like norm parameters
        and kernels (shaped on a batch of 32 realistic inputs), BatchNorm statistics
        measured on realistic inputs (batches of 8)."""
        torch.manual_seed(0)  # the same weights on every run: the cache key stays put
        model = self.build()
        _trained_like_norms(model, torch.Generator().manual_seed(1))
        _smooth_spatial_kernels(model)
        _quiet_residual_branches(model)
        if finish := getattr(model, "trained_like", None):  # a model's own trained traits
            finish(lambda g: self.sample(g, 32))
        _align_with_data(model, lambda g: self.sample(g, 32))
        _measure_batchnorm(model, lambda g: self.sample(g, 8))
        return model.eval()

    def example_inputs(self) -> Inputs:
        """One realistic input (batch 1, as deployed), seeded."""
        return self.sample(torch.Generator().manual_seed(0), 1)

    def calibration(self, count: int = 8) -> list[Inputs]:
        """``count`` realistic inputs for int8 calibration (seeds 1..count; the example
        input itself is not among them, as a deployment's calibration set would not be)."""
        return [self.sample(torch.Generator().manual_seed(i), 1) for i in range(1, count + 1)]

    def make(self) -> tuple[nn.Module, Inputs]:
        """``(model.eval(), example_inputs)``."""
        return self.model(), self.example_inputs()


_ENTRIES = (
    RealModel(
        "ds_cnn_kws", "keyword spotting, 12 classes (MLPerf Tiny DS-CNN small)",
        "[1, 1, 49, 10] MFCC, unnormalised (c0 about -33..17)", 10, True,
        DSCNN, _ds_cnn_inputs,
    ),
    RealModel(
        "resnet8_cifar10", "image classification, 10 classes (MLPerf Tiny ResNet-8)",
        "[1, 3, 32, 32] CIFAR-normalised image (about -2..2.1)", 10, True,
        ResNet8, _cifar_inputs,
    ),
    RealModel(
        "mobilenet_v1_025_vww", "visual wake words, 2 classes (MLPerf Tiny MobileNetV1 0.25)",
        "[1, 3, 96, 96] image, pixels in [0, 1]", 28, False,
        MobileNetV1VWW, _vww_inputs,
    ),
    RealModel(
        "autoencoder_ad", "anomaly detection, 640 in/out (MLPerf Tiny FC autoencoder)",
        "[1, 640] 5 frames x 128 log-mel bins, dB (about -55..5)", 10, True,
        AnomalyAutoencoder, _ad_inputs,
    ),
    RealModel(
        "mobilenet_v2_224", "image classification, 1000 classes (MobileNetV2 1.0)",
        "[1, 3, 224, 224] ImageNet-normalised image (about -2.1..2.6)", 53, False,
        lambda: MobileNetV2(1.0), lambda g, b=1: (normalised_images(b, 224, g),),
    ),
    RealModel(
        "mobilenet_v2_035_96", "image classification, 1000 classes (MobileNetV2 0.35)",
        "[1, 3, 96, 96] ImageNet-normalised image (about -2.1..2.6)", 53, False,
        lambda: MobileNetV2(0.35), lambda g, b=1: (normalised_images(b, 96, g),),
    ),
    RealModel(
        "resnet18_64", "image classification, 200 classes (ResNet-18, Tiny ImageNet)",
        "[1, 3, 64, 64] ImageNet-normalised image (about -2.1..2.6)", 21, False,
        ResNet18, lambda g, b=1: (normalised_images(b, 64, g),),
    ),
    RealModel(
        "lstm_kws", "keyword spotting, 12 classes (nn.LSTM 64 over MFCC frames)",
        "[1, 49, 10] MFCC frames, CMVN-normalised (std 1)", 2, False,
        lambda: RecurrentKWS("lstm"), _kws_cmvn_inputs,
    ),
    RealModel(
        "gru_kws", "keyword spotting, 12 classes (nn.GRU 64 over MFCC frames)",
        "[1, 49, 10] MFCC frames, CMVN-normalised (std 1)", 2, False,
        lambda: RecurrentKWS("gru"), _kws_cmvn_inputs,
    ),
    RealModel(
        "transformer_encoder", "sequence encoding (nn.TransformerEncoderLayer, d_model 64)",
        "[1, 32, 64] token embeddings + sinusoidal positions (std about 1)", 4, False,
        EncoderLayer, _encoder_inputs,
    ),
    RealModel(
        "vit_small_cifar10", "image classification, 10 classes (ViT, 2 blocks, dim 64)",
        "[1, 3, 32, 32] CIFAR-normalised image (about -2..2.1)", 10, False,
        SmallViT, _cifar_inputs,
    ),
    RealModel(
        "wav2letter_mfcc", "speech recognition, 40 classes per frame (Wav2Letter, 1-D convs)",
        "[1, 13, 100] MFCC, CMVN-normalised (std 1)", 11, False,
        Wav2Letter, _w2l_inputs,
    ),
)  # fmt: skip

REAL_MODELS: dict[str, RealModel] = {entry.name: entry for entry in _ENTRIES}
SLICE = tuple(name for name, entry in REAL_MODELS.items() if entry.ci_slice)
