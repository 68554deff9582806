"""Files of the LSTM speaker encoder: `config.json` (JSON with `//` comments) and
`best_model.pth.tar`.

Grad-SVC keeps both in `speaker_pretrain/`: `config.json` is committed to the repository and the
checkpoint (mueller91's Mozilla TTS speaker encoder, `{"model": state_dict, ...}`) is downloaded
by hand. Loading is strict and never runs code from the file: torch's tensors-only loader first,
then, for a checkpoint that also pickles numpy values or objects of a package that is not
installed (training-time extras of Mozilla TTS), an allow-list unpickler that resolves no global
beyond tensor rebuilds, numpy arrays and scalars and plain containers.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import pickle
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gvc.errors import CheckpointError, ConfigError
from speaker.lstm_model import LstmDims

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path("speaker_pretrain")
CHECKPOINT_NAME = "best_model.pth.tar"
CONFIG_NAME = "config.json"

WHERE_TO_GET = (
    "Grad-SVC's README links the checkpoint (mueller91's speaker encoder from the Mozilla TTS "
    "speaker-encoder release) and ships config.json in its speaker_pretrain/ folder; put both in "
    "that folder, or use the 'resemblyzer' speaker encoder, which needs no download"
)


# Phrases of torch's weights-only unpickler that mean "a well-formed pickle of non-tensor objects"
# (as opposed to a corrupt file, which fails in either mode).
_PICKLED_OBJECT_MARKERS = (
    "GLOBAL",
    "Can only create new object",
    "Can only build",
    "reduce for unrecognized function",
)

# Every global the allow-list unpickler resolves, as "module.name". torch.load turns storages into
# tensors itself (persistent ids); what remains are these rebuild functions, numpy's array and
# scalar reconstruction (module `numpy.core` before numpy 2, `numpy._core` since), the codec
# protocol 2 uses for bytes, and plain containers.
_ALLOWED_GLOBALS = frozenset({
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch.Size",
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.complex",
    "builtins.bytearray", "_codecs.encode",
    "numpy.ndarray", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
})


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (skipping torch's generic weights-only
    preamble)."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def missing_files_error(folder: Path, missing: list[Path]) -> CheckpointError:
    """The one-line error for absent speaker-encoder files (names the expected layout and
    source)."""
    names = ", ".join(str(p) for p in missing)
    return CheckpointError(
        f"speaker encoder files not found: {names}. Expected speaker_pretrain/{CHECKPOINT_NAME} "
        f"and speaker_pretrain/{CONFIG_NAME} (here: {folder}). {WHERE_TO_GET}"
    )


def strip_json_comments(text: str) -> str:
    """Remove `//` line comments and `/* */` block comments outside JSON strings.

    Newlines are kept, so `json` error positions still point at the right line. Text inside
    strings (e.g. `"http://..."`) is never touched, unlike a regular-expression strip.

    Raises:
        ConfigError: an unterminated block comment.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                raise ConfigError(f"unterminated /* comment starting on line {line}")
            out.append("\n" * text.count("\n", i, end))
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read_json_with_comments(path: Path) -> dict[str, Any]:
    """Parse a JSON object file that may contain `//` and `/* */` comments.

    Raises:
        ConfigError: unreadable file, syntax error (with line and column) or not an object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    try:
        data = json.loads(strip_json_comments(text))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a JSON object at the top level, got {type(data).__name__}"
        )
    return data


def dims_from_config(config: Mapping[str, Any], path: Path | str = CONFIG_NAME) -> LstmDims:
    """Network sizes from `config["model"]` (the published file) or `config["model_params"]`.

    When neither key is present the published sizes (80/256/768/3/true) are used, as Grad-SVC
    does; the strict checkpoint load then catches any disagreement.

    Raises:
        ConfigError: both keys present and different, unknown keys, bad values, no projection.
    """
    sections = [config[k] for k in ("model", "model_params") if isinstance(config.get(k), Mapping)]
    if len(sections) == 2 and dict(sections[0]) != dict(sections[1]):
        raise ConfigError(f"{path}: 'model' and 'model_params' disagree; keep one of them")
    if not sections:
        logger.info("%s: no 'model' section; using the published sizes %s", path, LstmDims())
        return LstmDims()
    section = dict(sections[0])
    known = set(LstmDims.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys in the model section: {', '.join(unknown)}")
    try:
        dims = LstmDims(**section)
    except TypeError as exc:
        raise ConfigError(f"{path}: bad model section: {exc}") from exc
    ints = (dims.input_dim, dims.proj_dim, dims.lstm_dim, dims.num_lstm_layers)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in ints):
        raise ConfigError(f"{path}: model sizes must be positive integers, got {section}")
    if dims.use_lstm_with_projection is not True:
        raise ConfigError(
            f"{path}: use_lstm_with_projection must be true (the only variant Grad-SVC's "
            "published speaker encoder uses)"
        )
    return dims


def _placeholder(module: str, name: str) -> type:
    """An inert stand-in for a pickled object whose package is not installed (mozilla_voice_tts).

    It is a dict (Mozilla's `AttrDict` config objects are dict subclasses) that stores whatever
    the pickle passes it (constructor arguments, appended items, `__dict__` state) and does nothing
    else, so a "call" of it from the pickle runs no code.
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self)
        self.args, self.kwargs, self.items_appended = args, kwargs, []

    def append(self: Any, item: Any) -> None:
        self.__dict__.setdefault("items_appended", []).append(item)

    def extend(self: Any, items: Any) -> None:
        self.__dict__.setdefault("items_appended", []).extend(items)

    def __setstate__(self: Any, state: Any) -> None:
        self.state = state

    attrs = {"__init__": __init__, "append": append, "extend": extend, "__setstate__": __setstate__}
    return type(name, (dict,), {**attrs, "__module__": module})


class ForeignGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list that is installed here (and so could
    run)."""


def _resolve(module: str, name: str) -> Any:
    """An allow-listed global (numpy 2 answers the old `numpy.core` path too)."""
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class _AllowListUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED_GLOBALS` and torch dtypes; a global of a package that is not
    installed becomes an inert stand-in; any other global is refused before it is looked up."""

    def find_class(self, module: str, name: str) -> Any:
        if f"{module}.{name}" in _ALLOWED_GLOBALS:
            return _resolve(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        # Only the top-level name is searched: a dotted find_spec would import the parent package.
        if importlib.util.find_spec(module.partition(".")[0]) is None:
            logger.warning("checkpoint references %s.%s (not installed); kept as an inert stub",
                           module, name)
            return _placeholder(module, name)
        raise ForeignGlobal(f"{module}.{name}")


def _allow_list_pickle_module() -> types.ModuleType:
    """A `pickle_module` for `torch.load` whose loads all go through `_AllowListUnpickler`."""
    mod = types.ModuleType("gvc_allow_list_pickle")
    mod.Unpickler = _AllowListUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: _AllowListUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    return mod


def load_checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The `model` state dict of a speaker-encoder checkpoint, on the CPU; runs no code from it.

    Raises:
        CheckpointError: unreadable file, a pickled global outside the allow-list (named in the
            message), no `model` key, non-tensor weights.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not any(marker in str(exc) for marker in _PICKLED_OBJECT_MARKERS):
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint ({_reason(exc)})"
            ) from exc
        ckpt = _load_allow_listed(path)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_reason(exc)})"
        ) from exc
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model"), Mapping):
        found = sorted(ckpt)[:5] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: expected a dict with a 'model' state dict (Mozilla TTS layout), found {found}"
        )
    state = dict(ckpt["model"])
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: 'model' holds non-tensor entries: {', '.join(map(str, bad[:5]))}"
        )
    return state


def _load_allow_listed(path: Path) -> Any:
    """`torch.load` through the allow-list unpickler (numpy values, stubs for absent packages)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False,
                          pickle_module=_allow_list_pickle_module())
    except ForeignGlobal as exc:
        raise CheckpointError(
            f"{path}: refers to {exc}, which a speaker checkpoint never needs; refused without "
            "running it (only tensors, numpy arrays and plain containers are loaded). Use the "
            "published best_model.pth.tar"
        ) from exc
    except Exception as exc:  # any other failure of a foreign pickle is a bad checkpoint
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def load_net_strict(net: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Copy `state` into `net`; any missing, unexpected or mis-shaped key is a `CheckpointError`."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: keys do not match the LSTM speaker encoder (missing: {missing[:4]}, "
            f"unexpected: {unexpected[:4]}); use the mueller91 best_model.pth.tar with its "
            f"config.json"
        )
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {list(state[key].shape)} but config.json's model sizes "
                f"need {list(ref.shape)}; the config and the checkpoint belong to different models"
            )
    net.load_state_dict(state, strict=True)
