"""Decoder objectives and samplers, kept apart from the networks they drive.

* `schedule`: the Grad-TTS VP schedule as pure float64 functions.
* `score`: forward process, score-matching loss and terminal sample of the score decoder.
* `samplers`: ml, euler, sde, dpm-solver-{1,2,3} (functions of a score estimator).
* `registry`: name -> sampler lookup used by configs and the CLI.
"""

from gvc.decoders.registry import SamplerSpec, get_sampler, run_sampler, sampler_names
from gvc.decoders.schedule import VPSchedule

__all__ = ["SamplerSpec", "VPSchedule", "get_sampler", "run_sampler", "sampler_names"]
