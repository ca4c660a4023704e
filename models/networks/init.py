"""Weight initialisation with the CycleGAN/CUT repos' semantics."""

from __future__ import annotations

from torch import nn
from torch.nn import init

INIT_TYPES: tuple[str, ...] = ("normal", "xavier", "kaiming", "orthogonal", "pytorch")


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place and return it.

    Conv*/Linear weights: N(0, gain) (``normal``), xavier_normal(gain), kaiming_normal (fan_in; the gain is
    ignored, as in the official code) or orthogonal(gain); their biases 0. BatchNorm2d: weight N(1, gain),
    bias 0. Modules are matched by class name like the official ``init_func`` so any custom layer named
    ``*Conv*``/``*Linear*`` with a weight is treated the same, and the visiting order (``net.apply``, children
    first) and thus the random draws equal the official ones. Buffers (e.g. the blur filters) are untouched.
    ``pytorch`` keeps PyTorch's default initialisation (U-GAT-IT's official code calls no init).
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init_type {init_type!r}; valid types: {', '.join(INIT_TYPES)}")
    if init_type == "pytorch":
        return net

    def init_module(m: nn.Module) -> None:
        name = type(m).__name__
        weight = getattr(m, "weight", None)
        if weight is None:
            return
        if "Conv" in name or "Linear" in name:
            if init_type == "normal":
                init.normal_(weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(weight.data, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(weight.data, a=0, mode="fan_in")
            else:
                init.orthogonal_(weight.data, gain=init_gain)
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name:
            # A BatchNorm weight is a per-channel scale, so it is drawn around 1 whatever init_type says.
            init.normal_(weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_module)
    return net
