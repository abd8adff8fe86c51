"""Plain temperature sampling: draw from softmax(logits / T) over the whole vocabulary.

The baseline every truncation method is compared with (Holtzman et al. 2020 show its long
tail is what degrades text at high T). T is the card's setting.
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.decoding.base import Sampler
from methods.registry import register


@register("decoding/temperature")
class Temperature(Sampler):
    @dataclass(frozen=True)
    class Params:
        pass  # nothing besides the temperature, which every sampler receives
