"""load_checkpoint.py: load a recompose checkpoint into the PyTorch reference
model with load_state_dict(strict=True) and print its parameter count.

    /usr/bin/python3 tests/ref/load_checkpoint.py CKPT.safetensors [--config INI]

The model shape comes from the checkpoint's "config" metadata (the INI text
recompose stores there), or from --config when given. The optimizer moments
("optim.m.*", "optim.v.*") are not model parameters and are left out; every
other tensor must be a parameter of that shape, and every parameter must be
present. Exit status 0 on success, 1 with a message naming the mismatch.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref as ref  # noqa: E402

OPTIM_PREFIXES = ("optim.m.", "optim.v.")


def load(path: str, config_path: str | None = None) -> ref.RecomposeRef:
    """The reference model holding the checkpoint's weights; raises
    ValueError with a readable message on any mismatch."""
    try:
        tensors, meta = ref.read_safetensors(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read as safetensors: {e}") from e
    if config_path:
        with open(config_path) as f:
            ini = f.read()
    elif "config" in meta:
        ini = meta["config"]
    else:
        raise ValueError(f"{path}: no 'config' in the metadata, so the model "
                         "shape is unknown; pass --config with the run's INI")
    shape = ref.ModelShape.from_ini(ini)
    model = ref.RecomposeRef(shape)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()
             if not k.startswith(OPTIM_PREFIXES)}
    expected = model.state_dict()
    for name, t in state.items():
        if name in expected and t.dtype != expected[name].dtype:
            raise ValueError(f"{path}: tensor {name} is {t.dtype}, expected "
                             f"{expected[name].dtype} (F32)")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: does not match the reference model of "
                         f"shape {shape}:\n{e}") from e
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--config", help="INI file giving the model shape "
                    "(default: the checkpoint's 'config' metadata)")
    args = ap.parse_args(argv)
    try:
        model = load(args.checkpoint, args.config)
    except ValueError as e:
        print(f"load_checkpoint: {e}", file=sys.stderr)
        return 1
    print(f"loaded {args.checkpoint}: {len(model.state_dict())} tensors, "
          f"{ref.count_parameters(model)} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
