import numpy as np
import pytest
import torch

from skinmask.archs import context_radius
from skinmask.model import ARCHITECTURES, N_FILTERS, build_model, receptive_radius


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_shapes_and_activations(arch: str) -> None:
    net = build_model(arch).eval()
    x = torch.randn(2, ARCHITECTURES[arch].in_channels, 17, 23)
    with torch.no_grad():
        prob, acts = net(x, return_activations=True)
    assert prob.shape == (2, 1, 17, 23)
    assert acts.shape == (2, N_FILTERS, 17, 23)
    assert float(prob.min()) >= 0 and float(prob.max()) <= 1
    assert float(acts.abs().max()) <= 1
    with torch.no_grad():
        assert torch.equal(net(x), prob)


def test_seed_net_is_exactly_conv_tanh_1x1_sigmoid() -> None:
    net = build_model("softconv").eval()
    assert isinstance(net.conv1, torch.nn.Conv2d) and net.conv1.in_channels == 3
    assert net.conv1.kernel_size == (3, 3) and net.conv1.padding == (1, 1)
    assert net.softconv.kernel_size == (1, 1) and net.softconv.out_channels == 1
    x = torch.randn(1, 3, 9, 9)
    manual = torch.sigmoid(torch.nn.functional.conv2d(torch.tanh(net.conv1(x)), net.softconv.weight, net.softconv.bias))
    assert torch.allclose(net(x), manual)


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if not ARCHITECTURES[a].context])
def test_receptive_radius_is_exact(arch: str) -> None:
    """Changing a pixel changes outputs exactly within the stated radius, nowhere beyond."""
    torch.manual_seed(0)
    net = build_model(arch).eval().double()
    r = receptive_radius(arch)
    size = 2 * r + 11
    x = torch.randn(1, ARCHITECTURES[arch].in_channels, size, size, dtype=torch.double)
    y = x.clone()
    c = size // 2
    y[0, :, c, c] += 5.0
    diff = (net(x) - net(y)).abs()[0, 0] > 0
    rows = diff.any(dim=1).nonzero().flatten()
    assert int(rows.min()) == c - r and int(rows.max()) == c + r


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if ARCHITECTURES[a].context])
def test_context_branch_sees_beyond_the_stem_and_within_its_radius(arch: str) -> None:
    """A pixel changed far outside the stem's reach still changes the output (through the context branch),
    and never beyond ``context_radius``; the stem path alone keeps its exact radius."""
    torch.manual_seed(0)
    net = build_model(arch).eval().double()
    for frame_level in (net.global_context, net.person_share):  # without frame-level inputs, the same radius
        if frame_level is not None:
            torch.nn.init.zeros_(frame_level.weight)
    r, rc = receptive_radius(arch), context_radius(arch)
    size = 2 * rc + 41
    x = torch.randn(1, ARCHITECTURES[arch].in_channels, size, size, dtype=torch.double)
    y = x.clone()
    c = size // 2
    y[0, :, c, c] += 5.0
    with torch.no_grad():
        diff = (net(x) - net(y)).abs()[0, 0] > 0
        rows = diff.any(dim=1).nonzero().flatten()
        assert c - rc <= int(rows.min()) < c - 3 * r and c + 3 * r < int(rows.max()) <= c + rc
        stem_only = (net.conv1(net.stem(x)) - net.conv1(net.stem(y))).abs()[0].amax(0) > 0
        rows = stem_only.any(dim=1).nonzero().flatten()
        assert int(rows.min()) == c - r and int(rows.max()) == c + r


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if ARCHITECTURES[a].global_context])
def test_global_context_lets_any_pixel_change_every_output(arch: str) -> None:
    """Through the frame's mean of the context features, one pixel far from all others changes every output
    pixel, in both corners of the frame, beyond the context branch's radius."""
    torch.manual_seed(0)
    net = build_model(arch).eval().double()
    size = 2 * context_radius(arch) + 41
    x = torch.randn(1, ARCHITECTURES[arch].in_channels, size, size, dtype=torch.double)
    y = x.clone()
    y[0, :, 2, 2] += 5.0
    with torch.no_grad():
        diff = (net(x) - net(y)).abs()[0, 0]
    assert diff[-1, -1] > 0 and diff[size // 2, -1] > 0 and (diff > 0).float().mean() > 0.99
    assert "the whole frame" in ARCHITECTURES[arch].summary


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if ARCHITECTURES[a].person_share])
def test_person_share_is_the_frames_and_reaches_every_output(arch: str) -> None:
    """The share of the frame the prior calls person (>= 128 of 255) feeds every output pixel: a far corner's
    prior crossing that level changes the whole map; one staying on its side of it changes only nearby
    outputs. A crop given its frame's share (training) sees what the frame does."""
    from skinmask.engines import to_input
    from skinmask.model import person_share
    from skinmask.weights import InputSpec

    torch.manual_seed(0)
    net = build_model(arch).eval().double()
    size = 2 * context_radius(arch) + 41
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    prior = np.zeros((1, size, size), np.uint8)
    prior[:, size // 2:, size // 2:] = 200  # a quarter of the frame is person
    x = to_input(frames, InputSpec(), torch.device("cpu"), prior).double()
    assert float(person_share(x)) == pytest.approx(((size - size // 2) / size) ** 2)
    corner = prior.copy()
    corner[0, :4, :4] = 128  # the far corner crosses the level: the share changes
    below = prior.copy()
    below[0, :4, :4] = 127  # stays below it: the share does not
    with torch.no_grad():
        base = net(x)
        crossed = (net(to_input(frames, InputSpec(), torch.device("cpu"), corner).double()) - base).abs()[0, 0]
        stayed = (net(to_input(frames, InputSpec(), torch.device("cpu"), below).double()) - base).abs()[0, 0]
        assert (crossed > 0).float().mean() > 0.99 and crossed[-1, -1] > 0
        assert stayed[-1, -1] == 0 and stayed[0, 0] > 0
        crop = x[:, :, :48, :48]
        assert float(person_share(crop)) == 0.0  # the person is outside this crop
        assert torch.equal(net(crop, share=person_share(crop)), net(crop))
        assert not torch.equal(net(crop, share=person_share(x)), net(crop))  # given its frame's share, it differs
    assert "the whole frame" in ARCHITECTURES[arch].summary


def test_unknown_arch() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("nope")
