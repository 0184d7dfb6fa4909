"""The property plug-in interface."""

from __future__ import annotations

from typing import Callable

REGISTRY: dict[str, type["Property"]] = {}


def register(cls: type["Property"]) -> type["Property"]:
    REGISTRY[cls.name] = cls
    return cls


class Property:
    name: str = ""
    description: str = ""
    catches: str = ""  # the kernel term for what a violation means

    def compile(self, layout) -> Callable[[tuple], str | None]:  # pragma: no cover - interface
        raise NotImplementedError
