"""Command-line values without pydantic on the common path.

Typer 0.29 coerces every parameter value (defaults included) through a pydantic
`TypeAdapter`; importing pydantic is ~100-150 ms of a command's start-up, more than the
rest of a `d2lkb search`. `install()` makes the plain values this CLI takes (a `str`, an
`int` inside its min/max, a `bool` that is one already, and their optional forms) coerce
without it. Every other value, and every value these rules would not accept as they stand,
goes to Typer's own coercion, so results and error messages are Typer's.

If Typer's internals change shape, `install()` does nothing and Typer works as shipped.
"""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

_INT = re.compile(r"[+-]?[0-9]+")


def _plain(annotation: Any) -> type | None:
    """str, int or bool (also inside Optional), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in (str, int, bool) else None


def install() -> bool:
    try:
        from dataclasses import dataclass

        from typer import _coercion, core

        base = _coercion.RuntimeParam
        build = _coercion.build_runtime_param
        original = core._TyperParameter.get_runtime_param
    except (ImportError, AttributeError):  # pragma: no cover - another Typer
        return False
    if getattr(original, "_d2lkb", False):
        return True

    @dataclass(frozen=True)
    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        kind: type
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            if self.kind in (str, bool) and type(value) is self.kind:
                return value
            if self.kind is int and info.parser is None and not info.clamp:
                number = value if type(value) is int else int(value) if isinstance(value, str) and \
                    _INT.fullmatch(value) else None
                if number is not None and (info.min is None or number >= info.min) and \
                        (info.max is None or number <= info.max):
                    return number
            return build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)  # Typer's way (pydantic)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            desc = self.type_descriptor
            kind = _plain(desc.annotation)
            if kind is not None and desc.file_annotation is None and desc.parameter_info.parser is None:
                self._runtime_param = PlainRuntimeParam(parameter_info=desc.parameter_info,
                                                        annotation=desc.annotation, kind=kind, descriptor=desc)
        return original(self)

    get_runtime_param._d2lkb = True  # type: ignore[attr-defined]
    core._TyperParameter.get_runtime_param = get_runtime_param
    return True
