"""The dlib face-net reader, on a file written here in dlib's serialisation (the real .dat is not shipped)."""

import numpy as np
import pytest
import torch

from ric.classifiers.dlib_face import DlibFaceNet, pad_add, read_dat
from ric.errors import InputError


def _int(v: int) -> bytes:
    n = max(1, (abs(v).bit_length() + 7) // 8)
    return bytes([n | (0x80 if v < 0 else 0)]) + abs(v).to_bytes(n, "little")


def _str(s: str) -> bytes:
    return _int(len(s)) + s.encode()


def _tensor(a: np.ndarray, shape) -> bytes:
    return _int(2) + b"".join(_int(d) for d in shape) + a.astype("<f4").tobytes()


def _dlib_bytes(net: DlibFaceNet) -> bytes:
    """A dlib-style stream of ``net``: loss/input headers, then layers from the input upwards, each followed by
    filler like dlib's per-layer bookkeeping (the reader must find layers by name)."""
    filler = _int(0) * 4
    out = [_int(1), _str("loss_metric_2"), _int(2) * 60, _str("input_rgb_image_sized"), _int(150), _int(150)]

    def con(m):
        w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
        params = np.concatenate([w.ravel(), b])
        out.extend([_str("con_4"), _tensor(params, (params.size, 1, 1, 1)), _int(w.shape[0]), _int(w.shape[2]),
                    _int(w.shape[3]), _int(m.stride[0]), _int(m.stride[1]), _int(m.padding[0]), _int(m.padding[1]),
                    filler])

    def aff(m):
        params = np.concatenate([m.gamma.detach().numpy(), m.beta.detach().numpy()])
        out.extend([_str("affine_"), _tensor(params, (1, params.size, 1, 1)), filler])

    def pool(kind, *p):
        out.extend([_str(kind)] + [_int(v) for v in p] + [filler])

    con(net.stem)
    aff(net.stem_aff)
    out.append(_str("relu_"))
    pool("max_pool_2", 3, 3, 2, 2, 0, 0)
    for b in net.blocks:
        con(b.conv1)
        aff(b.aff1)
        con(b.conv2)
        aff(b.aff2)
        if b.down:
            pool("avg_pool_2", 2, 2, 2, 2, 0, 0)
        out.append(_str("add_prev_"))
    pool("avg_pool_2", 0, 0, 1, 1, 0, 0)
    w = net.fc.weight.detach().numpy().T  # dlib stores inputs x outputs
    out.extend([_str("fc_2"), _int(128), _int(256), _tensor(w, (256, 128, 1, 1)), filler])
    return b"".join(out)


def test_read_dat_round_trip(tmp_path):
    torch.manual_seed(0)
    net = DlibFaceNet()
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    path = tmp_path / "net.dat"
    path.write_bytes(_dlib_bytes(net))
    other = DlibFaceNet()
    other.load_state_dict(read_dat(path))
    x = torch.randn(2, 3, 150, 150)
    with torch.no_grad():
        assert torch.equal(other.embed(x), net.embed(x))


def test_read_dat_rejects_bad_files(tmp_path):
    good = _dlib_bytes(DlibFaceNet())
    bad = tmp_path / "x.dat"
    bad.write_bytes(b"not a network" * 10)
    with pytest.raises(InputError, match="not a dlib"):
        read_dat(bad)
    bad.write_bytes(good[:len(good) // 2])
    with pytest.raises(InputError):
        read_dat(bad)


def test_dlib_add_prev_zero_fills_the_smaller_operand():
    a = torch.ones(1, 2, 3, 3)
    b = torch.ones(1, 4, 4, 4)
    s = pad_add(a, b)
    assert s.shape == (1, 4, 4, 4)
    assert s[0, 0, 0, 0] == 2 and s[0, 3, 0, 0] == 1 and s[0, 0, 3, 3] == 1


def test_shape_and_crop():
    net = DlibFaceNet(num_classes=5, crop=0.125, flip_tta=True).eval()
    assert net(torch.rand(2, 3, 160, 160)).shape == (2, 5)
    assert net.embed(torch.rand(1, 3, 64, 64)).shape == (1, 128)
    with pytest.raises(InputError):
        DlibFaceNet(in_channels=1)
