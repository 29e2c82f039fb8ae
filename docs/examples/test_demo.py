"""The site's demo run: what ``make docs`` runs on the host board for its pictures.

Three checks of one small keyword-spotting-sized CNN: a float program, an int8
program, and the int8 program with one layer broken on purpose (one output
channel's weights with the wrong sign), which fails with the per-layer table
naming that layer. The report page, its screenshot and the per-layer plot of
the site come from this run's results file.
"""

import torch

from et_hil.programs.faults import Fault


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1),
            torch.nn.ReLU(),
        )
        self.classifier = torch.nn.Linear(16, 12)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def make():
    torch.manual_seed(0)
    return SmallCnn().eval(), (torch.randn(1, 1, 24, 16),)


def test_float(et_check):
    et_check(*make())


def test_int8(et_check):
    et_check(*make(), quantize="int8")


def test_int8_with_a_broken_layer(et_check):
    # the third convolution's output (the tap point after its ReLU), channel 0 negated
    et_check(*make(), quantize="int8", fault=Fault("quantize_per_tensor_3", kind="sign"))
