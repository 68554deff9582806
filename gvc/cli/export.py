"""`gvc export`: an inference-only, self-describing model file from a checkpoint or a Grad-SVC
file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Force, Quiet, Verbose, console, setup_logging


def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The model file to write.")] = Path(
        "gvc.pth"
    ),
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="A gvc training checkpoint, or a run folder (its latest checkpoint); "
        "a gvc train-vocoder run gives a vocoder file for --vocoder-ckpt.")] = None,
    from_grad_svc: Annotated[Path | None, typer.Option(
        "--from-grad-svc",
        help="An original Grad-SVC gvc.pth / gvc.pretrain.pth to import (needs --preset).")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset",
        help="With --from-grad-svc: the preset or YAML the file was trained with (base = "
        "V2-96, v2-64 = V2-64, v3-cfm = V3-CFM, v3-cfm-rope = V3-CFM-RoPE). V2 and V3 files "
        "cannot be told apart by shapes.")] = None,
    decoder: Annotated[str | None, typer.Option(
        "--decoder",
        help="With --from-grad-svc: the decoder family when --preset is Grad-SVC's own YAML, "
        "which does not say (flow for a V3 file, score for V1/V2).")] = None,
    half: Annotated[
        bool,
        typer.Option("--half", help="Store weights as fp16 (half the size; loaded back as fp32)."),
    ] = False,
    force: Force = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write gvc.pth: Grad-SVC's {'model': ...} + a 'gvc' entry (architecture, config, features)."""
    from rich.table import Table

    from gvc.errors import ConfigError
    from gvc.export import export_checkpoint, import_gradsvc

    setup_logging(quiet, verbose)
    if (checkpoint is None) == (from_grad_svc is None):
        raise ConfigError("give exactly one of --checkpoint (a gvc training run) or "
                          "--from-grad-svc (an original Grad-SVC file)")
    if from_grad_svc is not None:
        if not preset:
            raise ConfigError(
                "--from-grad-svc needs --preset (base for V2-96, v2-64 for V2-64, v3-cfm / "
                "v3-cfm-rope for V3, or the YAML it was trained with plus --decoder): V2 and V3 "
                "files have identical shapes"
            )
        res = import_gradsvc(from_grad_svc, preset, out, half=half, force=force, decoder=decoder)
    else:
        if preset or decoder:
            raise ConfigError("--preset and --decoder are only for --from-grad-svc; a gvc "
                              "checkpoint carries its own config")
        if checkpoint.is_dir():
            from gvc.training.checkpoint import latest_checkpoint

            found = latest_checkpoint(checkpoint)
            if found is None:
                raise ConfigError(f"{checkpoint} holds no ckpt-*.pt checkpoint")
            checkpoint = found
        from vocoder.diffwave.train import export_vocoder, is_vocoder_checkpoint

        if is_vocoder_checkpoint(checkpoint):  # a gvc train-vocoder run
            vmeta = export_vocoder(checkpoint, out, half=half, force=force)
            arch, mel = vmeta["architecture"], vmeta["mel"]
            console.print(f"wrote {out}: {vmeta['vocoder']} vocoder, "
                          f"{arch['residual_layers']} layers x {arch['residual_channels']} "
                          f"channels, mel {mel['sampling_rate']} Hz hop {mel['hop_length']} "
                          f"{mel['n_mels']} bands, from {checkpoint} (step "
                          f"{vmeta['source']['step']})", highlight=False)
            return
        res = export_checkpoint(checkpoint, out, half=half, force=force)
    meta = res.meta
    table = Table(title=f"wrote {res.path}", header_style="bold", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("architecture", f"{meta['architecture']} ({meta['decoder']} decoder)")
    table.add_row("weights", f"{res.parameters:,} ({res.dtype})")
    for name in ("pitch", "content", "speaker"):
        entry = meta["features"].get(name) or {}
        table.add_row(name, str(entry.get("extractor") or "unrecorded"))
    table.add_row(
        "mel",
        f"{meta['features']['mel']['sampling_rate']} Hz, hop "
        f"{meta['features']['mel']['hop_length']}, {meta['features']['mel']['mel_channels']} bands",
    )
    src = meta["source"]
    if src.get("kind") == "grad-svc":
        table.add_row(
            "source", f"{src['file']} (Grad-SVC), architecture from --preset {src['preset']}"
        )
    else:
        table.add_row(
            "source", f"{src.get('file')} (step {src.get('step')}, epoch {src.get('epoch')})"
        )
        if src.get("weights", "online") != "online":
            table.add_row("weights", src["weights"])
    infer = meta["config"]["infer"]
    table.add_row("decoding", f"{infer['sampler']} x {infer['steps']}, temperature "
                  f"{infer['temperature']}, cfg {infer['cfg_strength']}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `export` to `app`."""
    app.command("export")(export)
