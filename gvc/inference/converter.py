"""`Converter`: one song in, the converted song out, from a self-describing model file alone.

Pipeline (all in-process; Grad-SVC's `gvc_inference.py` with its bugs fixed):

1. source audio at 16 kHz; HuBERT-Soft units (50 fps) and F0 (the model's pitch method), or
   `--vec` / `--pit` files checked against the audio length;
2. shift (semitones or auto), align (units x2, F0 shifted, common length T, 100 fps);
3. acoustic model chunk by chunk (quiet cut points, context on both sides, crossfade, noise
   fixed per absolute frame from one seed);
4. vocoder on the whole mel (chunked internally), fed the same shifted F0.

Temperature (Grad-SVC's `--rature`) means what the model's decoder family says
(`DecoderFamily.temperature_help`): score models start from x_T = mu + N(0, I) / temperature
(1.015 = start-noise std 0.985; Grad-SVC recommends 1.001-1.035), flow models from
x_0 = N(0, I) * temperature (Grad-SVC V3: the temperature multiplies).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvc.device import Runtime
from gvc.errors import ConfigError, GvcError
from gvc.inference import checks
from gvc.inference import features as feats
from gvc.inference.chunks import ChunkSettings, cut_scores, frame_energy_db, plan_chunks
from gvc.inference.noise import NoiseField
from gvc.inference.settings import DEFAULT_SEED, Conversion, DecodeSettings
from gvc.inference.shift import choose_shift, target_median
from gvc.inference.synthesis import run_acoustic, run_excitation, run_vocoder

log = logging.getLogger(__name__)

DEFAULT_CROSSFADE = 10  # frames (0.1 s), capped by 2 x context
VOCODER_SEED_OFFSET = 1  # the vocoder's generator is seeded with seed + 1

StageProgress = Callable[[str, int, int], None]  # (stage, done, total)


def _sync(runtime: Runtime) -> None:
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)


class Converter:
    """Loaded models plus the checks that tie them together.

    Build with `Converter.load`; then `convert(wave, spk, ...)` per input.

    Args:
        model: `GradSVC` (moved to `runtime.device`, eval mode).
        cfg: its config; meta: its `gvc` metadata.
        vocoder: a `vocoder.Vocoder`.
        content: HuBERT-Soft encoder, or None when every input brings `--vec`.
        pitch_method: F0 method for inputs without `--pit`.
        runtime: device and precision.
        allow_mismatch: warn instead of failing on feature-extractor or length mismatches.
    """

    def __init__(self, model, cfg, meta: dict[str, Any], vocoder, *, content=None,
                 pitch_method: str = checks.DEFAULT_PITCH, runtime: Runtime | None = None,
                 allow_mismatch: bool = False) -> None:
        self.runtime = runtime or Runtime(torch.device("cpu"))
        self.model = model.to(self.runtime.device).eval()
        if self.runtime.device.type == "cpu":
            # oneDNN runs the U-Net's 2-D convolutions ~15% faster on NHWC (channels-last) weights;
            # outputs equal the default layout's to float rounding (about 1e-5).
            self.model.decoder.to(memory_format=torch.channels_last)
        self.cfg, self.meta = cfg, meta
        self.features = checks.ModelFeatures.from_meta(meta)
        self.vocoder = vocoder
        self.content = content
        self.pitch_method = pitch_method
        self.allow_mismatch = allow_mismatch
        self._extractor = None
        checks.check_vocoder(vocoder, cfg.data)

    @classmethod
    def load(cls, model_path: Path, *, hubert_path: Path | None = None, load_content: bool = True,
             vocoder: str = "nsf-bigvgan", vocoder_ckpt: Path | None = None,
             vocoder_config: Path | None = None, vocoder_steps: int | None = None,
             f0_method: str | None = None,
             runtime: Runtime | None = None, allow_mismatch: bool = False) -> Converter:
        """Load every model, failing on a missing or mismatched file before any heavy work.

        Args:
            model_path: a gvc model file (`gvc export`); an original Grad-SVC file is refused
                with the import command in the message.
            hubert_path: HuBERT-Soft checkpoint (default `hubert_pretrain/hubert-soft-0d54a1f4.pt`).
            load_content: False when every input will bring `--vec` (HuBERT is not loaded).
            vocoder, vocoder_ckpt, vocoder_config: see `vocoder.load_vocoder`.
            vocoder_steps: sampling steps of an iterative vocoder (DiffWave: 6 or 50).
            f0_method: override of the model's pitch method (warns when it differs).
            runtime: device and precision (CPU fp32 if None).
            allow_mismatch: see the class docstring.

        Raises:
            CheckpointError: a missing/unreadable/mismatched model, HuBERT or vocoder file.
            ConfigError: unknown vocoder or F0 method, or a vocoder with another mel.
        """
        from gvc.export import load_exported
        from hubert import DEFAULT_CHECKPOINT, load_content_encoder
        from vocoder.registry import checkpoint_for, get_spec, load_vocoder

        runtime = runtime or Runtime(torch.device("cpu"))
        hubert_path = Path(hubert_path) if hubert_path is not None else DEFAULT_CHECKPOINT
        # a missing file fails here, before anything large is read (the loaders name the file
        # and where to download it)
        spec = get_spec(vocoder)
        voc_path = checkpoint_for(spec, vocoder_ckpt)
        if spec.capabilities.weights and voc_path is not None and not voc_path.is_file():
            load_vocoder(vocoder, voc_path, vocoder_config, runtime)
        if load_content and not hubert_path.is_file():
            load_content_encoder(hubert_path, runtime)
        model, cfg, meta = load_exported(model_path)
        model_feats = checks.ModelFeatures.from_meta(meta)
        if not meta.get("features"):
            log.warning("%s records no training features; extractor checks are skipped",
                        model_path)
        if load_content:
            checks.check_content(model_feats.content, None, allow_mismatch)
        method = checks.resolve_pitch_method(model_feats.pitch, f0_method, allow_mismatch)
        voc = load_vocoder(vocoder, vocoder_ckpt, vocoder_config, runtime)
        if vocoder_steps is not None:
            voc.set_steps(vocoder_steps)
        content = load_content_encoder(hubert_path, runtime) if load_content else None
        log.info("model %s (%s, %s decoder), vocoder %s, pitch %s, device %s %s", model_path,
                 meta.get("architecture"), meta.get("decoder"), voc.name, method,
                 runtime.device, runtime.precision.value)
        return cls(model, cfg, meta, voc, content=content, pitch_method=method, runtime=runtime,
                   allow_mismatch=allow_mismatch)

    # ------------------------------------------------------------------ settings
    def decode_settings(self, sampler: str | None = None, steps: int | None = None,
                        temperature: float | None = None, seed: int | None = None,
                        options: dict[str, object] | None = None,
                        cfg_strength: float | None = None) -> DecodeSettings:
        """Sampling settings: the model config's `infer:` defaults, overridden where given.

        `options` are extra keywords of the sampler function; they are tried on a dummy input
        here, so a wrong name or value fails before any compute.

        Raises:
            ConfigError: a sampler of another decoder family, bad sampler options, steps < 1,
                temperature <= 0, guidance on a model not trained for it.
        """
        inf = self.cfg.infer
        decoder = self.model.decoder
        name = decoder.sampler(sampler or inf.sampler).name
        options = dict(options or {})
        steps = inf.steps if steps is None else steps
        if options:
            decoder.check_sampler_options(name, options, steps)
        cfg = inf.cfg_strength if cfg_strength is None else float(cfg_strength)
        if cfg < 0:
            raise ConfigError(f"--cfg-strength must be >= 0, got {cfg}")
        if cfg > 0 and not decoder.guidance:
            raise ConfigError(f"--cfg-strength {cfg:g}: this {decoder.name} model was trained "
                              "without condition dropout, so it has no unconditional branch "
                              "to guide with; use 0 (a flow model trained with flow.drop_spk or "
                              "flow.drop_content > 0 supports it)")
        temp = inf.temperature if temperature is None else temperature
        if steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {steps}")
        if not temp > 0:
            raise ConfigError(f"--temperature must be > 0, got {temp}")
        seed = seed if seed is not None else inf.seed if inf.seed is not None else DEFAULT_SEED
        if seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {seed}")
        return DecodeSettings(name, int(steps), float(temp), int(seed), options, cfg)

    def chunk_settings(self, chunk_seconds: float | None = None,
                       context_seconds: float | None = None,
                       crossfade_seconds: float | None = None) -> ChunkSettings:
        """Chunking: the config's `infer.chunk_frames`/`context_frames` unless overridden."""
        inf = self.cfg.infer
        chunk = inf.chunk_frames if chunk_seconds is None else int(round(chunk_seconds * 100))
        ctx = inf.context_frames if context_seconds is None else int(round(context_seconds * 100))
        fade = (min(DEFAULT_CROSSFADE, 2 * max(ctx, 0)) if crossfade_seconds is None
                else int(round(crossfade_seconds * 100)))
        return ChunkSettings(chunk_frames=chunk, context_frames=ctx, crossfade_frames=fade)

    def speaker(self, spk: Path) -> np.ndarray:
        """Load and check the target speaker vector: [256] float32 (see `checks.check_speaker`)."""
        return checks.check_speaker(Path(spk), self.cfg.grad.n_spks, self.features.speaker,
                                    self.allow_mismatch)

    def check_files(self, vec: Path | None = None, pit: Path | None = None) -> None:
        """Feature-extractor checks of `--vec` / `--pit` files (before loading any audio)."""
        if vec is not None:
            checks.check_content(self.features.content, Path(vec), self.allow_mismatch)
        elif self.content is None:
            raise ConfigError("no content encoder loaded: pass --vec, or load HuBERT")
        if pit is not None:
            checks.check_pitch_file(Path(pit), self.features.pitch, self.allow_mismatch)

    @property
    def extractor(self):
        """The pitch extractor (built on first use)."""
        if self._extractor is None:
            from pitch import make_extractor

            self._extractor = make_extractor(self.pitch_method, device=str(self.runtime.device),
                                             precision=self.runtime.precision.value,
                                             decimals=None)
            self._extractor.setup()
        return self._extractor

    # ------------------------------------------------------------------ stages
    def source_features(self, wav16k: np.ndarray, *, vec: Path | None = None,
                        pit: Path | None = None,
                        timings: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Units [T50, 256] float32 and unshifted F0 [N] float64 Hz of a 16 kHz waveform,
        computed or read from `vec` / `pit` (whose lengths must match the audio)."""
        timings = {} if timings is None else timings
        n = len(wav16k)
        t0 = time.perf_counter()
        if vec is not None:
            units = feats.read_units(Path(vec), self.cfg.grad.n_vecs)
            checks.check_length("content-unit", Path(vec), units.shape[0],
                                feats.expected_unit_frames(n), 2, self.allow_mismatch)
        else:
            if self.content is None:
                raise ConfigError("no content encoder loaded: pass --vec, or load HuBERT")
            units = feats.compute_units(self.content, wav16k)
        _sync(self.runtime)
        t1 = time.perf_counter()
        if pit is not None:
            f0 = feats.read_pitch(Path(pit))
            checks.check_length("pitch", Path(pit), len(f0), feats.expected_pitch_frames(n), 2,
                                self.allow_mismatch)
        else:
            f0 = feats.compute_pitch(self.extractor, wav16k)
        t2 = time.perf_counter()
        timings["units"], timings["pitch"] = t1 - t0, t2 - t1
        return units, f0

    def convert(self, wave: Path, spk: np.ndarray, *, spk_path: Path | None = None,
                vec: Path | None = None, pit: Path | None = None, shift: float | str = 0.0,
                profile: Path | None = None, decode: DecodeSettings | None = None,
                chunking: ChunkSettings | None = None,
                progress: StageProgress | None = None) -> Conversion:
        """Convert one audio file (see the module docstring).

        Args:
            wave: input audio (any rate/format `gvc.audio` reads).
            spk: [256] target speaker vector (`speaker()`); spk_path: its file (locates the
                default profile for `shift="auto"`).
            vec, pit: optional precomputed units / F0 files replacing the computed ones.
            shift: semitones or `"auto"`; profile: explicit singer profile for auto.
            decode: sampling settings (`decode_settings()` defaults if None).
            chunking: chunk settings (`chunk_settings()` defaults if None).
            progress: called with (stage, done, total) as stages and chunks finish.

        Raises:
            AudioError, FeatureMismatch, ConfigError: bad input, mismatched features, no profile.
        """
        decode = decode or self.decode_settings()
        chunking = chunking or self.chunk_settings()
        spk_ref = Path(spk_path) if spk_path is not None else Path("<speaker vector>")
        if shift == "auto":  # the profile must exist before any compute
            target_median(spk_ref, profile)
        self.check_files(vec, pit)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        wav16k = feats.load_source(Path(wave))
        timings["load"] = time.perf_counter() - t0
        if progress:
            progress("features", 0, 1)
        units, f0_src = self.source_features(wav16k, vec=vec, pit=pit, timings=timings)
        if progress:
            progress("features", 1, 1)
        choice = choose_shift(shift, f0_src, spk_ref, profile)
        vec100, f0 = feats.align(units, f0_src, choice.semitones)
        total = vec100.shape[0]
        scores = cut_scores(frame_energy_db(wav16k, total, feats.FRAME_HOP), f0,
                            chunking.crossfade_frames)
        plan = plan_chunks(total, chunking, scores)
        if progress:
            progress("acoustic", 0, len(plan))
        t0 = time.perf_counter()
        mel = run_acoustic(self.model, vec100, f0, spk, plan, chunking.crossfade_frames,
                           sampler=decode.sampler, steps=decode.steps,
                           temperature=decode.temperature, noise=NoiseField(decode.seed),
                           runtime=self.runtime, cfg_strength=decode.cfg_strength,
                           **decode.options,
                           progress=(lambda d, n: progress("acoustic", d, n)) if progress else None)
        _sync(self.runtime)
        timings["acoustic"] = time.perf_counter() - t0
        if not torch.isfinite(mel).all():
            raise GvcError(f"{wave}: the {decode.sampler} sampler diverged in {decode.steps} steps "
                           f"(NaN/Inf mel); use more --steps or a deterministic sampler such as "
                           f"dpm-solver-2")
        if progress:
            progress("vocoder", 0, 1)
        t0 = time.perf_counter()
        audio = run_vocoder(self.vocoder, mel, f0, decode.seed + VOCODER_SEED_OFFSET)
        _sync(self.runtime)
        timings["vocoder"] = time.perf_counter() - t0
        if not np.isfinite(audio).all():
            raise GvcError(f"{wave}: the vocoder produced NaN/Inf samples; check the model files")
        if progress:
            progress("vocoder", 1, 1)
        return Conversion(audio=audio, sample_rate=self.vocoder.sample_rate, mel=mel, f0=f0,
                          shift=choice, chunks=len(plan), seconds=len(wav16k) / feats.SAMPLE_RATE,
                          timings=timings)

    def excitation(self, f0: np.ndarray, seed: int) -> np.ndarray:
        """NSF excitation of an F0 track (the vocoder's own source, same phases as its output
        for the same decode seed): [T * 320] float32. Raises ConfigError for other vocoders."""
        if not self.vocoder.capabilities.excitation:
            raise ConfigError(f"--save-pitch-wav needs a vocoder with an NSF excitation, not "
                              f"{self.vocoder.name}")
        return run_excitation(self.vocoder, f0, seed + VOCODER_SEED_OFFSET)
