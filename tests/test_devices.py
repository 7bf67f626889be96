import pytest
import torch

from skinmask.devices import select_device
from skinmask.errors import DeviceError


def test_cuda_request_without_cuda_fails_loudly() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="no CUDA device"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
