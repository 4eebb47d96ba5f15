"""One helper turns a device setting into a device (model.distributed), 'auto' included."""
import pytest
import torch

from model.distributed import device_name, resolve_device
from model.errors import ModelError


@pytest.mark.parametrize("gpu, expected", [(True, "cuda"), (False, "cpu")])
def test_auto_is_the_gpu_when_torch_sees_one(monkeypatch, gpu, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert device_name("auto") == expected
    assert device_name("cpu") == "cpu" and device_name(None) is None


def test_auto_resolves_to_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_a_bad_device_name_is_one_line_naming_it():
    with pytest.raises(ModelError, match="device='gpu'"):
        resolve_device("gpu")
