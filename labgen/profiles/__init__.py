"""Policy as data: Mozilla's guideline profiles merged with what internet.nl also demands.

The same Profile feeds the templates and the checks' expectations, so a value is typed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

import yaml

PROFILES = ("modern", "intermediate")


@dataclass(frozen=True)
class Profile:
    name: str
    data: Mapping[str, Any]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def tls12(self) -> bool:
        return "TLSv1.2" in self.tls_versions


@lru_cache(maxsize=None)
def load_profile(name: str) -> Profile:
    folder = resources.files(__package__)
    data = yaml.safe_load(folder.joinpath("base.yml").read_text(encoding="utf-8"))
    data.update(yaml.safe_load(folder.joinpath(f"{name}.yml").read_text(encoding="utf-8")))
    return Profile(name, MappingProxyType(data))
