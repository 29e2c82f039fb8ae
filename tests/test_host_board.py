"""The host board end to end, with the real ExecuTorch runtime (no mocks)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from et_hil.errors import ConfigError, RunCrashed
from et_hil.processes.runtime_worker import RuntimeWorker
from tests.helpers import host_workers

pytestmark = pytest.mark.slow


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)),)


def _net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


def test_float_program_matches_eager_and_writes_an_etdump(host, builder, tmp_path):
    artifact = builder.build(_net(), _inputs(), target="portable", board="host")
    assert artifact.metadata["delegation"]["delegated_nodes"] == 0
    assert "aten.convolution" in artifact.metadata["delegation"]["cpu_ops"]

    result = host.run(artifact, [_inputs()[0].numpy()], run_dir=tmp_path)
    expected = _net()(*_inputs()).detach().numpy()
    np.testing.assert_allclose(result.outputs[0], expected, rtol=1e-4, atol=1e-5)
    assert result.execute_s > 0

    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    etdump = deserialize_from_etdump_flatcc(result.etdump_path.read_bytes())
    events = [
        event.profile_event.name
        for block in etdump.run_data
        for event in block.events
        if event.profile_event is not None
    ]
    assert "Method::execute" in events
    assert any("convolution" in name for name in events)


def test_intermediate_outputs_go_to_the_debug_buffer(host, builder, tmp_path):
    artifact = builder.build(_net(), _inputs(), target="portable", board="host")
    result = host.run(artifact, [_inputs()[0].numpy()], run_dir=tmp_path, debug_buffer_size=1 << 20)
    assert result.debug_buffer_path is not None
    # conv output alone is 4*8*8 float32 = 1024 bytes; the buffer holds more than that.
    assert result.debug_buffer_path.stat().st_size > 1024


def test_wrong_inputs_are_refused_before_running(host, builder, tmp_path):
    artifact = builder.build(_net(), _inputs(), target="portable", board="host")
    with pytest.raises(ConfigError, match=r"model 'Net' cannot take these inputs: input 0 is"):
        host.run(artifact, [np.zeros((1, 3, 4, 4), np.float32)], run_dir=tmp_path)


def test_abort_is_a_crash_and_the_worker_comes_back(host, builder, tmp_path):
    artifact = builder.build(_net(), _inputs(), target="portable", board="host")
    starts = host.worker.starts
    with pytest.raises(RunCrashed, match="SIGABRT") as info:
        host.run(artifact, [_inputs()[0].numpy()], run_dir=tmp_path / "a", debug_buffer_size=16)
    assert "Ran out of space" in info.value.log_tail
    result = host.run(artifact, [_inputs()[0].numpy()], run_dir=tmp_path / "b")
    assert host.worker.starts == starts + 1
    assert result.outputs[0].shape == (1, 5)


def test_stopped_worker_leaves_no_process(pytester, monkeypatch, tmp_path):
    monkeypatch.chdir(pytester.path)  # host_workers() recognises workers by cwd
    worker = RuntimeWorker(
        tmp_path / "worker.log", module="et_hil.boards.host.worker", label="host"
    )
    worker.start()
    deadline = time.monotonic() + 10  # until the child has exec'd (its cmdline is set)
    while not host_workers(pytester) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_workers(pytester) != []  # the check sees a live worker...
    worker.stop()
    assert host_workers(pytester) == []  # ...and none after stop()
