"""``cosim infer``: deploy a trained network ex situ onto crossbar tiles and measure its accuracy.

Examples::

    cosim infer --model runs/digits/                     # a training run (its model.onnx)
    cosim infer --model runs/digits/ --float             # its float reference, deployed ex situ
    cosim infer --model net.onnx --config infer.toml --output-dir out
    cosim infer --model net.onnx --set deploy.method='"open-loop"' --set array.r_row=1 --engine nodal
    cosim infer --model net.onnx --export-netlists tapeout   # tape-out of the deployed tiles
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "infer", help="deploy a trained network (ONNX or a training run) onto tiles and test it",
        description="Program a trained network's weights into fresh crossbar devices (ideal, open-loop or "
                    "write-verify; directly or through the V/2, V/3 or row-parallel circuit), then read the test "
                    "set through DAC, circuit and ADC. Writes metrics.json, tiles.csv and figures. Exit status: "
                    "0 on success, 2 for a bad model, config or input.")
    p.add_argument("--model", required=True, help="an ONNX file, or a training run's output folder")
    p.add_argument("--float", dest="float_weights", action="store_true",
                   help="with a training run folder: deploy its float reference (float_model.onnx)")
    p.add_argument("--config", help="inference config (TOML: [data] [array] [device] [converters] [solver] [deploy])")
    p.add_argument("--engine", choices=("ideal", "nodal", "spice"), help="circuit engine for the reads")
    p.add_argument("--data", metavar="DIR", help="folder of MNIST-format IDX files (sets data.dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config field (repeatable), e.g. --set deploy.method='\"open-loop\"'")
    p.add_argument("--output-dir", help="where metrics.json and figures go (default: no files)")
    p.add_argument("--export-netlists", metavar="DIR", help="write the tape-out of the deployed tiles into DIR")
    p.set_defaults(func=run)


def _run_defaults(model: Path) -> list[str]:
    """A training run's data set and seed, so the deployed network is tested on its own test split."""
    import tomllib

    cfg = model / "config.toml"
    if not model.is_dir() or not cfg.is_file():
        return []
    try:
        data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    out = []
    for k, v in (data.get("data") or {}).items():
        if v != "none":
            out.append(f"data.{k}={v!r}".replace("'", '"') if isinstance(v, str) else f"data.{k}={v}")
    seed = (data.get("train") or {}).get("seed")
    if isinstance(seed, int):
        out.append(f"deploy.data_seed={seed}")
    return out


def run(args: argparse.Namespace) -> int:
    from cosim.train.infer import load_model, run_inference
    from cosim.train.infer_config import load_inference_config

    model = Path(args.model)
    overrides = [] if args.config else _run_defaults(model)
    overrides += list(args.overrides)
    if args.engine:
        overrides.append(f'solver.engine="{args.engine}"')
    if args.data:
        overrides.append(f'data.dir="{Path(args.data).expanduser().resolve()}"')
        if not any(o.startswith("data.name") for o in overrides):
            overrides.append('data.name="fashion"' if "fashion" in str(args.data) else 'data.name="mnist"')
    cfg = load_inference_config(args.config, overrides)
    if args.export_netlists:
        from cosim.array.tapeout import check_output

        check_output(args.export_netlists)
    net, weights, source = load_model(model, float_weights=args.float_weights)
    res = run_inference(net, weights, cfg, model=source)
    m, p = res.metrics, res.metrics["programming"]
    ideal = m.get("accuracy_ideal_reads")
    print(f"{m['network']} on {m['tiles']} tiles ({cfg.array.rows}x{cfg.array.cols}, {m['engine']}): test accuracy "
          f"{100 * m['accuracy']:.2f} % (float {100 * m['float_accuracy']:.2f} %"
          + (f", ideal reads {100 * ideal:.2f} %" if ideal is not None else "") + f") on {m['test_images']} images")
    print(f"programming ({p['method']}, {p['scheme']}): error rms {100 * p['error_rms']:.2f} % of window, "
          f"{p['set_pulses']} SET + {p['reset_pulses']} RESET pulses, {p['verify_reads']} verify reads, "
          f"{p['time_s']:.3g} s, {p['energy_J']:.3g} J; {p['unmet']} devices missed the tolerance, "
          f"{p['faulty']} faulty, {p['out_of_window']} targets outside their device's window")
    if args.output_dir:
        from cosim.train.infer_outputs import write_inference_outputs

        print(f"wrote {write_inference_outputs(res, cfg, Path(args.output_dir))}")
    if args.export_netlists:
        from cosim.array.tapeout import write_tapeout
        from cosim.study.export import array_line
        from cosim.study.inference import deployed_tiles

        info = {"model": source, "array": array_line(cfg.array.spec_fields()), "deploy": p["method"],
                "scheme": p["scheme"], "test accuracy": m["accuracy"]}
        files = write_tapeout(deployed_tiles(res, weights), args.export_netlists,
                              title=f"cosim tape-out: deployed {m['network']}", info=info)
        print(f"wrote {len(files.tiles)} tile netlists, top.cir, devices.csv and README.md to {files.directory}")
    return 0

