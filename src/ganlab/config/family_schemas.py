"""The schemas of the model families and the losses, read from their classes' signatures, so that each default
is written once: ``schema/model/<module>`` for the GAN family defined in ``ganlab/models/<module>.py``, and
``schema/loss/<ClassName>`` for each objective of ``ganlab/losses.py``. A new family or loss needs no line here.
Importing this module registers them (and the hand-written schemas of ``ganlab.config.schemas``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from dataclasses import field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

import ganlab.config.schemas  # noqa: F401  (the hand-written schemas: trainer, optimizers, data)
import ganlab.losses
import ganlab.models
from ganlab.config.bounds import Bound, annotated_bound
from ganlab.models.gan import GAN


def schema_of(cls: type, external: tuple[str, ...] = ()) -> type:
    """A schema dataclass from ``cls.__init__``'s signature: each keyword's type, default and Bound; a class whose
    ``__init__`` takes ``**kwargs`` passes them to its base, so the base's parameters join (a subclass's default
    wins, the base's bound stays). Parameters without a default are open dicts (networks); ``external`` ones
    (passed by the caller, not configured in the group) are left out."""
    found: dict[str, tuple[Any, Any, Bound | None]] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        hints = typing.get_type_hints(init, include_extras=True)
        parameters = inspect.signature(init).parameters
        for name, parameter in parameters.items():
            if (
                name == "self"
                or name in external
                or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
            ):
                continue
            hint, bound = annotated_bound(hints.get(name, Any))
            hint = omegaconf_type(hint)
            if name in found:
                kind, default, known = found[name]
                found[name] = (kind, default, known or bound)
            else:
                found[name] = (hint, parameter.default, bound)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    fields = [("_target_", str, field(default=f"{cls.__module__}.{cls.__qualname__}"))]
    for name, (hint, default, bound) in found.items():
        metadata = bound.metadata() if bound else {}
        if default is inspect.Parameter.empty:
            fields.append((name, dict[str, Any], field(default_factory=dict, metadata=metadata)))
        elif isinstance(default, (list, dict)):
            fields.append((name, hint, field(default_factory=lambda d=default: type(d)(d), metadata=metadata)))
        else:
            fields.append((name, hint, field(default=default, metadata=metadata)))
    return make_dataclass(f"{cls.__name__}Schema", fields)


def omegaconf_type(hint: Any) -> Any:
    """A signature's type as OmegaConf takes it: ``X | None`` as ``Optional[X]``, and an optional list or dict as
    ``Any`` (OmegaConf resolves an interpolation given to an ``Optional[list]`` field as it merges, before the key
    it points to exists: ``held_out: ${data.held_out}``); the class checks those values itself."""
    if isinstance(hint, types.UnionType):
        hint = typing.Union[hint.__args__]  # noqa: UP007
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and any(typing.get_origin(a) in (list, dict) for a in args):
        return Any
    return hint


def model_families() -> dict[str, type]:
    """Each module of ``ganlab.models`` and the GAN family it defines: ``schema/model/<module>``."""
    families = {}
    for module_info in pkgutil.iter_modules(ganlab.models.__path__):
        module = importlib.import_module(f"ganlab.models.{module_info.name}")
        defined = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, GAN) and value.__module__ == module.__name__
        ]
        if len(defined) == 1:
            families[module_info.name] = defined[0]
    return families


def losses() -> dict[str, type]:
    """The objectives of ``ganlab.losses`` by class name: ``schema/loss/<ClassName>``."""
    return {
        name: value
        for name, value in vars(ganlab.losses).items()
        if isinstance(value, type) and issubclass(value, ganlab.losses.GANLoss)
    }


def register() -> None:
    cs = ConfigStore.instance()
    for name, family in model_families().items():
        external = ("loss", "optimizer", *family.derived_arguments)  # passed by train(), or set by the family
        cs.store(group="schema/model", name=name, node=schema_of(family, external=external))
    for name, loss in losses().items():
        cs.store(group="schema/loss", name=name, node=schema_of(loss))


register()
