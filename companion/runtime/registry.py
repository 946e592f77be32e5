"""Named factories for one kind of part (LLM providers, STT and TTS engines), found by the modules that define them.

A provider module registers its factory with a decorator (``@PROVIDERS.register("openai")``); the registry
imports every module of its package the first time a name is asked for, so adding a provider is one new file
(plus its config section), and nothing chooses between providers with an if-chain. Installed packages can add
their own through the entry-point group named at construction. Provider modules keep their heavy imports
(torch, CTranslate2, ONNX) inside the factory, so discovering them stays cheap.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

__all__ = ["Registry", "RegistryError"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., object])


class RegistryError(LookupError):
    """No part of that name: the message lists the names there are."""


class Registry(Generic[F]):
    def __init__(self, kind: str, package: str, group: str | None = None) -> None:
        self.kind = kind  # "LLM provider": how errors name it
        self.package = package  # where its modules live, e.g. "companion.llm"
        self.group = group  # the entry-point group of third-party parts, e.g. "companion.llm"
        self._factories: dict[str, F] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[F], F]:
        def add(factory: F) -> F:
            known = self._factories.get(name)
            if known is not None and known is not factory and getattr(known, "__module__", "") != getattr(factory, "__module__", ""):
                raise RegistryError(f"two {self.kind}s are called {name!r}: {known.__module__} and {factory.__module__}")
            self._factories[name] = factory
            return factory

        return add

    def get(self, name: str) -> F:
        if name not in self._factories:
            self.discover()
        try:
            return self._factories[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._factories)

    def discover(self) -> None:
        """Import every module of the package (and the entry points), once: their decorators register them."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__, self.package + "."):
            importlib.import_module(module.name)
        if self.group:
            for point in entry_points(group=self.group):
                try:
                    self.register(point.name)(point.load())
                except Exception as exc:  # noqa: BLE001 - a broken third-party part must not stop the rest
                    log.error("%s %s from %s could not be loaded: %s", self.kind, point.name, point.value, exc)
