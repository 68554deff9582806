"""End-to-end conversion of songs (`gvc infer`), from a self-describing model file alone.

* `converter`: `Converter` (load models, check them, `convert(wave, spk, ...)`);
  `settings`: `DecodeSettings`, `Conversion`.
* `features`: compute or read units / F0, align them to the mel rate (Grad-SVC's rules).
* `shift`: semitone shift, `--shift auto` from the target singer's profile.
* `chunks`: quiet cut points, chunk plans with context, crossfaded joins.
* `noise`: sampler noise indexed by absolute frame (chunking does not change it).
* `synthesis`: the chunked acoustic-model and vocoder loops.
* `checks`: consistency checks run before compute.
* `outputs`, `batch`: output naming, intermediate files, folder mode.

Nothing here imports training code.
"""

from gvc.inference.batch import OutputOptions, convert_folder, plan_folder, write_conversion
from gvc.inference.chunks import Chunk, ChunkSettings, plan_chunks
from gvc.inference.converter import Converter
from gvc.inference.noise import NoiseField
from gvc.inference.outputs import Intermediates, default_output, resolve_output
from gvc.inference.settings import DEFAULT_SEED, Conversion, DecodeSettings
from gvc.inference.shift import ShiftChoice, auto_semitones, choose_shift, parse_shift, shift_f0

__all__ = [
    "DEFAULT_SEED",
    "Chunk",
    "ChunkSettings",
    "Conversion",
    "Converter",
    "DecodeSettings",
    "Intermediates",
    "NoiseField",
    "OutputOptions",
    "ShiftChoice",
    "auto_semitones",
    "choose_shift",
    "convert_folder",
    "default_output",
    "parse_shift",
    "plan_chunks",
    "plan_folder",
    "resolve_output",
    "shift_f0",
    "write_conversion",
]
