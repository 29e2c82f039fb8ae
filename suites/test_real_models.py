"""Real-model suite: the networks users regress (MLPerf Tiny, MobileNetV2, ResNet-18,
LSTM/GRU, transformers, Wav2Letter), float and int8, on every selected board.

Every test carries the ``real_model`` marker; the cheap ones (``REAL_MODELS[...].ci_slice``)
also ``real_model_slice``, so ``-m real_model_slice`` runs the CI slice. A plain
``pytest suites`` runs them all (minutes a board with a cold cache); ``-m "not
real_model"`` leaves them out (suites/conftest.py). Board tests use the board's default
limits: no per-model tolerance here. int8 programs calibrate on eight realistic inputs
(``RealModel.calibration``), as a deployment would, not on noise around the example.
"""

from __future__ import annotations

import pytest
import torch
from real_models import REAL_MODELS, weight_layers
from torch import nn

pytestmark = pytest.mark.real_model


def _params() -> list:
    return [
        pytest.param(name, id=name, marks=[pytest.mark.real_model_slice] if entry.ci_slice else [])
        for name, entry in REAL_MODELS.items()
    ]


def _leaf_outputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """The output of every leaf module (the first tensor of a tuple, e.g. an LSTM's)."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args, out):
            outputs[name] = (out[0] if isinstance(out, tuple) else out).detach()

        return hook

    handles = [
        module.register_forward_hook(keep(name))
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


@pytest.mark.parametrize("name", _params())
def test_prepared_weights(name):
    """Eager only: the prepared model behaves like a trained one, not a bare init.

    A bare init gives a MobileNetV2 at 96x96 outputs of std 4e-9 and DS-CNN 2e-5 (int8
    turns them into zeros); prepared, every model's output std is 0.12-1.5 over 8 inputs
    and every layer's output std at least 0.014 (ViT's projections, initialised at std
    0.02), with the batch's spread at least 0.1 of it. The limits below leave room
    around those figures while still catching a collapse by orders of magnitude.
    """
    entry = REAL_MODELS[name]
    model = entry.model()
    assert not model.training
    assert weight_layers(model) == entry.layers
    batch = entry.sample(torch.Generator().manual_seed(77), 8)
    with torch.no_grad():
        out = model(*batch)
    assert 0.08 < float(out.std()) < 2.0, f"output std {float(out.std()):.3g}"
    # Inputs differ, so outputs must too (a collapsed network answers every input alike).
    assert float(out.std(dim=0).mean()) > 0.02 * float(out.std())
    for layer, value in _leaf_outputs(model, batch).items():
        std = float(value.float().std())
        assert std > 1e-3, f"{layer}: output std {std:.3g} (collapsed)"
        across = float(value.float().std(dim=0).mean())
        assert across > 0.02 * std, f"{layer}: the same output for every input"


def test_example_inputs_are_stable():
    """Seeded inputs and weights: the same bytes on every call, so the cache key holds."""
    entry = REAL_MODELS["ds_cnn_kws"]
    (first,), (second,) = entry.example_inputs(), entry.example_inputs()
    assert torch.equal(first, second)
    first_state, second_state = entry.model().state_dict(), entry.model().state_dict()
    assert all(torch.equal(first_state[key], second_state[key]) for key in first_state)


@pytest.mark.parametrize("name", _params())
def test_float(et_check, name):
    model, inputs = REAL_MODELS[name].make()
    result = et_check(model, inputs)
    eager_float = result.comparisons[0]
    assert eager_float.reference == "eager_float"
    # The same math as eager in another order: float32 rounding alone. Seen on host:
    # 89 dB (MobileNetV1, 28 layers) to 139 dB (GRU); 80 dB leaves room, and any real
    # difference (a wrong layer, a dropped bias) falls far below it.
    assert eager_float.metrics[0].snr_db > 80


@pytest.mark.parametrize("name", _params())
def test_int8(et_check, name):
    entry = REAL_MODELS[name]
    model, inputs = entry.make()
    result = et_check(model, inputs, quantize="int8", calibration=entry.calibration())
    if not result.artifact.quantized:
        pytest.skip(f"{result.artifact.metadata['target']} quantizer leaves '{name}' in float")
    by_reference = {c.reference: c for c in result.comparisons}
    assert {"fake_quant", "eager_float"} <= by_reference.keys()
    top1 = by_reference["fake_quant"].metrics[0].top1
    if top1 is not None:  # classifiers: the program picks the class fake-quant picks
        assert top1 == 1.0


def _fake_quant_snr_params() -> list:
    params = []
    for param in _params():
        (name,) = param.values
        marks = list(param.marks)
        if name == "mobilenet_v2_224":
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", _fake_quant_snr_params())
def test_int8_fake_quant_snr(name):
    """Eager only: the Arm quantizer's int8 fake-quant model (tosa-int and Ethos-U targets;
    per-channel weights, calibrated on ``RealModel.calibration()`` as the int8 tests do)
    follows the float model within 15 dB SNR on the example input, as trained networks
    do (20-40 dB). A chaotic random network instead amplifies int8's rounding until its
    own fake-quant reference is noise, and the board verdicts, which compare the board's
    error with that reference's, pass almost anything.

    mobilenet_v2_224 is also marked ``slow``: about 50 s here (10 s to prepare, 40 s to
    quantize at 224x224), the others 1-15 s.
    """
    # Measured on the example input, dB, before -> after real_models.py's trained-like
    # weights (smooth depthwise kernels, quiet residual branches, kernels shaped to their
    # inputs' principal components, ViT positions and head at trained scales):
    #                         Arm (tested)   XNNPACK        CMSIS-NN (cortex-m55)
    #   ds_cnn_kws            31.9 -> 33.3   30.4 -> 34.1   30.9 -> 31.0
    #   resnet8_cifar10       30.0 -> 40.8   36.4 -> 44.6   34.8 -> 44.6
    #   mobilenet_v1_025_vww   4.0 -> 18.8    4.6 -> 27.0    1.6 -> 27.0
    #   autoencoder_ad         7.4 -> 16.4   10.2 -> 16.4   11.2 -> 16.4
    #   mobilenet_v2_224      11.7 -> 36.1   10.1 -> 33.9   11.7 -> 32.1
    #   mobilenet_v2_035_96    7.0 -> 20.9    4.9 -> 19.0    6.9 -> 19.1
    #   resnet18_64           18.8 -> 31.7   20.4 -> 31.5   21.6 -> 31.6
    #   lstm_kws              20.7 -> 38.5   20.8 -> 44.4   20.6 -> 39.2
    #   gru_kws               26.4 -> 32.8   38.3 -> 40.8   26.3 -> 35.3
    #   transformer_encoder   30.8 -> 30.9   34.7 -> 34.7   33.7 -> 33.6
    #   vit_small_cifar10      2.3 -> 21.0    7.4 -> 23.7    7.3 -> 20.6
    #   wav2letter_mfcc       42.1 -> 43.7   45.5 -> 61.2   45.1 -> 55.7
    from et_hil.programs.builder import export_model, quantize_model
    from et_hil.programs.quantization import QuantConfig
    from et_hil.programs.target_registry import get_target

    entry = REAL_MODELS[name]
    model, inputs = entry.make()
    with torch.no_grad():
        reference = model(*inputs)
    target = get_target("tosa-int", board="real-model-snr")
    fake_quant = quantize_model(
        export_model(model, inputs), target, QuantConfig(), entry.calibration(), name
    )
    with torch.no_grad():
        out = fake_quant(*inputs)
    out = out[0] if isinstance(out, tuple | list) else out
    error = (out.double() - reference.double()).pow(2).sum()
    snr_db = float(10 * torch.log10(reference.double().pow(2).sum() / error.clamp_min(1e-30)))
    assert snr_db >= 15.0, f"{name}: int8 fake-quant SNR {snr_db:.1f} dB against eager float"
