"""Write a family's bundled checkpoint, stegafast/weights/<family>.pt, from a training run.

    python3 scripts/export_bundled.py --family codec --run runs/bundled-codec \
        [--metrics runs/bundled-codec/heldout/rd.json] [--summary TEXT] [--full-precision] [--out FILE]

--run is a run folder (its best checkpoint by validation, else its latest) or a checkpoint file.
--metrics is the JSON the family's ``evaluate`` wrote on the held-out photographs; it is recorded in the
file's provenance (without its per-image lists), and its ``summary`` line, when it has one, is what
``stegafast info`` shows (else --summary, else the first numbers in it). Prints the file's size and
parameter count. Mistakes are one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from stegafast.errors import UserError
from stegafast.models.codec import CodecTask
from stegafast.models.stamp.task import StampTask
from stegafast.models.stego.task import StegoTask
from stegafast.train.bundled import BUNDLED_FAMILIES, bundled_path, export_bundled

TASKS = {"stego": StegoTask, "stamp": StampTask, "codec": CodecTask}
BULKY = "per_image"  # lists of every image's numbers: in the evaluation's own JSON, not in the shipped file


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", required=True, choices=BUNDLED_FAMILIES)
    p.add_argument("--run", required=True, metavar="RUN", help="run folder or checkpoint file")
    p.add_argument("--metrics", metavar="FILE.json", help="the held-out evaluation's JSON")
    p.add_argument("--summary", metavar="TEXT", help="one line of held-out numbers for `stegafast info`")
    p.add_argument("--full-precision", action="store_true", help="keep the tensors' precision (default: float16)")
    p.add_argument("--out", metavar="FILE", help="where to write (default: stegafast/weights/<family>.pt)")
    return p.parse_args(argv)


def _without_bulk(value):
    if isinstance(value, dict):
        return {k: _without_bulk(v) for k, v in value.items() if k != BULKY}
    if isinstance(value, list):
        return [_without_bulk(v) for v in value]
    return value


def _read_metrics(path: str) -> dict:
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"--metrics {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise UserError(f"--metrics {path}: expected a JSON object")
    return _without_bulk(metrics)


def _provenance(args: argparse.Namespace, argv: list[str]) -> dict:
    record = {"family": args.family, "command": shlex.join(["python3", "scripts/export_bundled.py", *argv])}
    script = Path(f"scripts/bundled/{args.family}.sh")
    record["training_script"] = str(script)
    if args.metrics is not None:
        metrics = _read_metrics(args.metrics)
        record.update(metrics=metrics, metrics_file=args.metrics)
        if isinstance(metrics.get("summary"), str):
            record["summary"] = metrics["summary"]
    if args.summary is not None:
        record["summary"] = args.summary
    return record


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    out = Path(args.out) if args.out else bundled_path(args.family)
    try:
        facts = export_bundled(
            args.run, TASKS[args.family], out, half=not args.full_precision, provenance=_provenance(args, argv)
        )
    except UserError as exc:
        print(f"export_bundled: error: {exc}", file=sys.stderr)
        return 2
    kept = facts["provenance"]["kept_full_precision"]
    print(
        f"wrote {facts['path']}: {facts['bytes'] / 1e6:.2f} MB, {facts['parameters']:,} parameters, "
        f"step {facts['step']}, {facts['provenance']['precision']}"
        + (f" ({len(kept)} tensors kept in full precision)" if kept else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
