"""``soccerkd export``: write TorchScript/ONNX artifacts of a checkpoint (or an untrained model) with parity."""

from __future__ import annotations

import argparse
from pathlib import Path

from soccerkd.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a model to TorchScript and ONNX and check parity")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path,
                        help="checkpoint written by 'soccerkd train', or 'demo' (the student shipped with the service)")
    source.add_argument("--model", help="export an untrained registered model instead (see --num-classes)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the artifacts")
    parser.add_argument("--format", dest="formats", action="append", choices=("torchscript", "onnx"),
                        help="format to write (repeatable; default: both)")
    parser.add_argument("--num-classes", type=int, default=4, help="classes of an untrained --model (default 4)")
    parser.add_argument("--frames", type=int, help="clip length of an untrained --model (default: the family's)")
    parser.add_argument("--size", type=int, help="input size of an untrained --model (default: the family's)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max allowed |exported - eager| (default 1e-4)")
    parser.add_argument("--batch-sizes", default="1,3", help="comma-separated batch sizes of the parity clips")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from soccerkd.export import FORMATS, export_model

    try:
        batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        raise ConfigError(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}") from None
    if args.checkpoint is not None:
        from soccerkd.train.checkpoint import load_model

        model, spec, meta = load_model(args.checkpoint)
        print(f"checkpoint {meta['checkpoint_path']} (sha256 {meta['checkpoint_sha256'][:12]}): "
              f"{meta['model_name']}, epoch {meta['epoch']}, classes {', '.join(spec.class_names)}")
    else:
        from soccerkd.models import create_model

        model = create_model(args.model, num_classes=args.num_classes, frames=args.frames)
        spec = model.input_spec
        if args.size is not None:
            if args.size < 1:
                raise ConfigError(f"--size must be >= 1, got {args.size!r}")
            spec = replace(spec, size=args.size, resize=max(args.size, round(args.size * spec.resize / spec.size)))
        print(f"untrained {args.model} (random weights), {spec.num_classes} classes")
    export_model(model, spec, args.out, formats=tuple(args.formats or FORMATS), tolerance=args.tolerance,
                 batch_sizes=batch_sizes)
    print(f"wrote {args.out}/ (input_spec.json, export_report.json)")
    return 0
