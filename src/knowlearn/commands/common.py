"""What the commands share: quiet libraries, shipped configs, model and run folders."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from importlib.resources import files
from pathlib import Path

from knowlearn.errors import KnowlearnError, RenamedKeyWarning

DEMO_CONFIG = "demo.yaml"


def quiet_libraries() -> None:
    """Only knowlearn's own lines on the terminal: the libraries' notices and progress bars off."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Deprecation notices of the libraries (peft calls a renamed transformers method) are
    # for their developers, not for a user reading what knowlearn says.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")
    # A merge=false adapter stacked on another adapter has no config.json beside it: fine.
    warnings.filterwarnings("ignore", message="Could not find a config file", module=r"peft\.")
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    # transformers imports torchao wherever it is installed (`weights: bf16`): on a CPU its
    # CUDA extensions fail to load and torch notes deprecations, one line each, every run.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def renamed_keys_in_one_line() -> None:
    """A config key under its former name is said as `knowlearn: warning: ...`, not as a
    Python warning that points into knowlearn's source; other warnings show as before."""
    show = warnings.showwarning
    if getattr(show, "knowlearn", False):
        return  # installed by an earlier main() in this process

    def one_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, RenamedKeyWarning):
            print(f"knowlearn: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    one_line.knowlearn = True  # type: ignore[attr-defined]
    warnings.showwarning = one_line


def shipped_config(name: str) -> Path:
    """A config shipped in the package (works from a wheel as from a checkout)."""
    return Path(str(files("knowlearn") / "configs" / name))


def at_least_one(value: int, option: str) -> None:
    """argparse takes any int: a 0 or negative count is named as the option it came from."""
    if value < 1:
        raise KnowlearnError(f"must be >= 1, got {value}", field=option)


def final_model(path: Path) -> Path:
    """A model directory: `path` itself, or a finished run directory's final model.

    An experiment directory, or a run that has not finished, is refused with what to pass
    instead (its model folders hold checkpoints or nothing yet).
    """
    if (path / "arms").is_dir():
        arms = sorted(str(p.parent) for p in path.glob("arms/*/seed*/results.json"))
        raise KnowlearnError(
            f"an experiment directory: choose one of its runs ({', '.join(arms[:4]) or 'none finished'})",
            file=path,
        )
    if (path / "config.yaml").is_file() and not (path / "config.json").is_file():
        if not (path / "results.json").is_file():
            done = [s for s in ("it", "cpt") if (path / s / "done.json").is_file()]
            hint = (
                f", or pass --model {path / done[0] / 'model'} for its {done[0]} model"
                if done
                else " (no stage has finished yet)"
            )
            raise KnowlearnError(
                f"a run directory that has not finished (no results.json): rerun its command to "
                f"finish it{hint}",
                file=path,
            )
        for stage in ("it/model", "cpt/model"):  # a run directory: its final model
            if (path / stage).is_dir():
                return path / stage
    return path
