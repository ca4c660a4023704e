"""The model registry: one line per model, ``--model NAME`` finds the class here.

Adding a model means writing ``models/<name>_model.py`` and adding its line below. Modules are imported
lazily so that a broken or heavy model never slows down (or breaks) the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base_model import BaseModel

MODEL_REGISTRY: dict[str, str] = {
    "cycle_gan": "models.cycle_gan_model:CycleGANModel",
    "liss": "models.liss_model:LiSSModel",
    "test": "models.test_model:TestModel",
    "tunit": "models.tunit_model:TunitModel",
    "unit": "models.unit_model:UNITModel",
    "cut": "models.cut_model:CUTModel",
    "srunit": "models.srunit_model:SRUNITModel",
    "ugatit": "models.ugatit_model:UGATITModel",
    "ugatit_enhanced": "models.ugatit_enhanced_model:UGATITEnhancedModel",
}


def model_names() -> list[str]:
    return sorted(MODEL_REGISTRY)


def find_model_class(name: str) -> type[BaseModel]:
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(model_names())}")
    module_name, class_name = MODEL_REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_model(opt) -> BaseModel:
    """Instantiate the model named by ``opt.model`` (networks on CPU; the trainer moves them).

    Its plain convolutions take the faster CPU path unless ``--no-fast_cpu_convs``, ``--compile`` or
    ``--channels_last`` (see ``models.networks.fast_conv``); on CUDA each call falls back to cuDNN by itself.
    ``--compile`` / ``--channels_last`` / ``--tf32`` are applied here (``models.accelerate``).
    """
    from models.accelerate import fast_convs_allowed, prepare_networks, set_tf32

    model = find_model_class(opt.model)(opt)
    if fast_convs_allowed(opt):
        from models.networks.fast_conv import use_fast_cpu_convs

        use_fast_cpu_convs(model)
    set_tf32(getattr(opt, "tf32", False))
    prepare_networks(model.networks(), opt)
    return model
