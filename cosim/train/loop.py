"""In-situ training on tiles: :func:`run_training`, a pure function of the config (and its seed).

One run, step by step:

1. The data set, the network and its software initial weights (seeded); the device card, its
   nominal :class:`PulseTable` (the curve every optimizer and the estimates use), and one
   :class:`~cosim.array.layer.TiledLayer` per weight matrix, its devices drawn from the seed.
2. The optimizer's start plan per layer (``reference`` / ``adopt`` / ``none``, see
   :mod:`cosim.train.optimizers.reinit`) is applied: write-verify targets or open-loop pulses.
3. Every step: the hardware forward and backward reads (DAC → circuit → ADC), the weight
   gradient x̂ᵀδ/B formed digitally, the optimizer's pulse counts from the *estimated*
   conductances, the pulses sent to the devices (c2c noise), the estimates advanced open-loop.
   The float reference network (FloatSGD) trains on the same batch. A method with a fast array
   (Tiki-taka) gets a second TiledLayer per weight matrix, built the same way from its own
   device stream: ``step``'s pulses go there, and ``transfer`` reads it through its tiles and
   returns the pulses for the weight array. Its pulses count as training pulses (pulse log
   layers ``n_layers + k``).
4. Refresh checks (if the optimizer has a ``refresh_threshold``) every ``train.refresh_every``
   steps or once an epoch: at its end, before its test, or (``train.refresh_at =
   "epoch_start"``) at the next epoch's start, after the test, so that training follows each
   refresh. Saturated pairs are re-centred, then, after write-verify, a verify read and
   :func:`~cosim.train.optimizers.reinit.repair_plan` for pairs a stuck device kept from their
   weight. ADC ranges are recalibrated at each epoch's start (after its refresh).
5. Per epoch: test accuracy through the hardware, pulses, sparsity, energy, saturation.

Random streams are split from ``train.seed`` (data order, optimizer rounding, device noise,
device draws, initial weights), so the engine choice changes no random number: "ideal" and
"nodal" with zero wire resistance train identically up to round-off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.array import ArraySpec, Converters, TiledLayer, WeightMap
from cosim.circuit.solvers import kernels
from cosim.train.config import TrainingConfig, load_device_card
from cosim.train.metrics import PulseLog, convergence_epoch
from cosim.train.networks import FloatLayerWeights, Network, float_layers, make_network
from cosim.train.optimizers import FloatSGD, FloatSGDConfig, repair_plan
from cosim.train.optimizers.reinit import KEEP_TILES_ROUNDS, keep_tiles_plan, measured_gain, missed_targets
from cosim.train.sizes import check_training_memory

log = logging.getLogger(__name__)
SATURATION = 0.02  # a device within 2 % of its own window edge counts as saturated there
#: An epoch whose ADC conversions clipped more often than this gets a warning: an 8-bit ADC
#: calibrated on one batch clips a few outputs of later ones by chance, but on the full
#: Fashion set a CNN's forward outputs outgrew the epoch's first read, 40 % of them clipped by
#: step 550 of 938, and its training collapsed (README, Fashion-MNIST).
ADC_CLIP_WARN = 0.01


@dataclass
class TrainResult:
    """What :func:`run_training` returns.

    Attributes:
        metrics: JSON-able summary (accuracies as fractions, pulses, sparsity, convergence epoch,
            energy proxy in J, times in s).
        epochs: one dict per epoch (the rows of epochs.csv).
        config: the validated config that ran.
        pulse_log: the per-device :class:`PulseLog`.
        weights: final true weights per layer; float_weights: the float reference's.
        conductances: {"initial"|"final": [per layer (g⁺, g⁻) arrays]} of the weight devices, S.
        layers: the trained :class:`TiledLayer` objects (their tiles hold the final devices).
        fast_layers: a fast-array method's A layers (empty otherwise).
        network, data: the network and data set the run used (to read the trained tiles again).
        output_dir: where files were written, or None.
    """

    metrics: dict[str, Any]
    epochs: list[dict[str, Any]]
    config: TrainingConfig
    pulse_log: PulseLog
    weights: list[np.ndarray]
    float_weights: list[np.ndarray] | None
    conductances: dict[str, list] = field(default_factory=dict)
    layers: list[TiledLayer] = field(default_factory=list, repr=False)
    fast_layers: list[TiledLayer] = field(default_factory=list, repr=False)
    network: Network | None = field(default=None, repr=False)
    data: Any = field(default=None, repr=False)
    output_dir: Path | None = None


STREAMS = ("data", "init", "optimizer", "devices", "noise", "fast")


def streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """The independent random streams of a run, split from ``train.seed``: data order, initial
    weights, optimizer rounding, device draws, device noise, fast-array device draws (appended
    last, so the others are the same whether or not a method has a fast array)."""
    return dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))


def load_data(cfg: TrainingConfig):
    """The data set a config names (seeded split / subsets)."""
    from cosim.train.data import load_digits_split, load_idx_dataset

    d, seed = cfg.data, cfg.train.seed
    if d.name == "digits":
        ds = load_digits_split(seed=seed, test_fraction=d.test_fraction, subset=d.subset)
        if d.test_subset is not None and d.test_subset < len(ds.y_test):
            keep = np.sort(np.random.default_rng(seed + 1).choice(len(ds.y_test), d.test_subset, replace=False))
            ds = type(ds)(ds.name, ds.x_train, ds.y_train, ds.x_test[keep], ds.y_test[keep], ds.image_shape,
                          ds.n_classes, ds.class_names, ds.source)
        return ds
    return load_idx_dataset(d.dir, d.name, subset=d.subset, test_subset=d.test_subset, seed=seed)


def batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's shuffled mini-batches of indices (the last may be smaller)."""
    order = rng.permutation(n)
    return [order[k:k + batch] for k in range(0, n, batch)]


def accuracy(net: Network, mats, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    """Fraction of ``x`` classified as ``y`` through ``mats`` (hardware or float)."""
    hits = 0
    for k in range(0, len(y), batch):
        hits += int(np.sum(net.predict(mats, x[k:k + batch]).argmax(axis=1) == y[k:k + batch]))
    return hits / max(len(y), 1)


def build_layers(cfg: TrainingConfig, net: Network, card, curve, seed: np.random.SeedSequence) -> list[TiledLayer]:
    """One TiledLayer per weight matrix of ``net`` (devices drawn from ``seed``)."""
    a = cfg.array
    array = ArraySpec(**a.spec_fields())
    c = cfg.converters
    conv = Converters(v_read=c.v_read or abs(card.programming.v_read), dac_bits=c.dac_bits, adc_bits=c.adc_bits,
                      adc_headroom=c.adc_headroom, adc_range=c.adc_range)
    s = cfg.solver
    options = s.options()
    wmap = WeightMap(g_min=curve.g_min, g_max=curve.g_max, w_max=a.w_max, mapping=a.mapping)
    layers = [TiledLayer.create(shape, array=array, card=card, options=options, converters=conv, wmap=wmap,
                                curve=curve, seed=sd, block_rows=a.tile_rows, block_cols=a.tile_cols,
                                update=cfg.device.update, backend=cfg.device.backend, name=f"L{k}")
              for k, (shape, sd) in enumerate(zip(net.layer_shapes, seed.spawn(net.n_layers)))]
    stages = [s for s in net.stages if s.weight_shape is not None]
    for layer, stage in zip(layers, stages):
        if getattr(stage, "bias", False):  # the network drops the bias row's backward output
            layer.backward_rows = layer.shape[0] - 1
    return layers


def _apply_plan(layer: TiledLayer, li: int, plan, rng, plog: PulseLog, step: int) -> None:
    if plan.target_plus is not None:
        plog.verify_writes += layer.program(plan.target_plus, plan.target_minus, plan.mask)
    for n_p, n_m in plan.pulses:
        n_m = layer.minus_pulses(n_m)
        layer.apply_pulses(n_p, n_m, rng, track=False)
        plog.record(li, "+", n_p, step=step, kind="program")
        plog.record(li, "-", n_m, step=step, kind="program")
    layer.set_estimates(plan.estimate_plus, plan.estimate_minus)


def _device_state(layer: TiledLayer) -> dict[str, float]:
    """Saturation (fraction of healthy weight devices near their own window edges) and faults."""
    g = layer.device_arrays(lambda t: t.conductances())
    lo = layer.device_arrays(lambda t: t.window()[0])
    hi = layer.device_arrays(lambda t: t.window()[1])
    bad = layer.device_arrays(lambda t: t.faults())
    out = {"high": 0, "low": 0, "healthy": 0, "faulty": 0}
    for k in range(2):
        if g[k] is None:
            continue
        u = (g[k] - lo[k]) / np.where(hi[k] > lo[k], hi[k] - lo[k], 1.0)
        ok = ~bad[k]
        out["high"] += int(np.sum(ok & (u >= 1 - SATURATION)))
        out["low"] += int(np.sum(ok & (u <= SATURATION)))
        out["healthy"] += int(ok.sum())
        out["faulty"] += int((~ok).sum())
    return out


class _DeviceNotices(logging.Filter):
    """Training sends millions of pulses, and c2c noise at a window edge is routine there: each
    tile's device population would warn once about it. During a run those notices go to DEBUG,
    counted, and the run logs one INFO line instead (the counts stay in the populations' stats)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            self.count += 1
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def run_training(config: TrainingConfig, *, progress: bool = True, output_dir: str | Path | None = None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train the config's network in situ on tiles, beside its float reference; see the module
    docstring. Writes the output files when ``output_dir`` (or ``config.output.dir``) is set;
    ``on_epoch`` receives each epoch's row (as epochs.csv has it) when the epoch ends."""
    notices = _DeviceNotices()
    device_log = logging.getLogger("cosim.devices.population")
    device_log.addFilter(notices)
    try:
        with _blas_threads(config.solver.engine):
            result = _run_training(config, progress=progress, output_dir=output_dir, on_epoch=on_epoch)
    finally:
        device_log.removeFilter(notices)
    if notices.count:
        log.info("%d device-population warning(s) (clipping at window edges) logged at DEBUG; counts in "
                 "the tiles' population .stats", notices.count)
    return result


#: Environment variables that set BLAS threads; when one is set, training leaves BLAS as it says.
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _blas_threads(engine: str):
    """The BLAS thread setting a run trains under: one thread with circuit reads, unless the
    environment sets one (:data:`BLAS_ENV`); ideal reads leave BLAS its default.

    Why: circuit reads keep every core busy in compiled kernels, and a second OpenBLAS thread
    for the network's small matmuls only competes with them (Fashion MLP and CNN epochs with
    nodal reads measured 13–16 % faster on one BLAS thread; README, Speed)."""
    if engine == "ideal" or any(name in os.environ for name in BLAS_ENV):
        return contextlib.nullcontext()
    return kernels.single_thread_blas()


@dataclass(eq=False)
class _Run:
    """What one training run holds between its named steps (built by :func:`_set_up`)."""

    cfg: TrainingConfig
    data: Any
    net: Network
    curve: Any
    layers: list[TiledLayer]
    fast: list[TiledLayer]
    opt: Any
    plog: PulseLog
    rng_opt: np.random.Generator
    rng_noise: np.random.Generator
    rng_data: np.random.Generator
    g_initial: list
    ref: FloatSGD | None = None
    ref_layers: list[FloatLayerWeights] = field(default_factory=list)

    @property
    def n_devices(self) -> int:
        return sum(layer.n_devices for layer in self.layers + self.fast)


def _set_up(cfg: TrainingConfig) -> _Run:
    """Step 1: data, network, devices on tiles, optimizer and the start plans (the order of the
    draws is part of the seed's meaning: keep it)."""
    from cosim.devices import PulseTable

    tr = cfg.train
    ss = streams(tr.seed)
    s_data, s_init, s_opt, s_dev, s_noise = (ss[k] for k in STREAMS[:5])
    check_training_memory(cfg)  # before the data set or a tile is allocated
    data = load_data(cfg)
    net = make_network(cfg.network.kind, data.image_shape, data.n_classes, hidden=cfg.network.hidden,
                       activation=cfg.network.activation, pool=cfg.network.pool)
    w_init = net.init_weights(np.random.default_rng(s_init), cfg.network.init)
    card = load_device_card(cfg.device)
    curve = PulseTable.from_card(card)
    layers = build_layers(cfg, net, card, curve, s_dev)
    opt = cfg.optimizer.build()
    rng_opt, rng_noise, rng_data = (np.random.default_rng(s) for s in (s_opt, s_noise, s_data))
    fast = build_layers(cfg, net, card, curve, ss["fast"]) if opt.fast_array else []
    plog = PulseLog(list(net.layer_shapes) * (2 if fast else 1), events=tr.pulse_log == "events")
    for li, (layer, w) in enumerate(zip(layers, w_init)):
        reads = layer.read_pairs() if opt.reinit_mode == "adopt" else (None, None)
        plan = opt.initial_plan(w, curve, layer.wmap.scale, g_plus_read=reads[0], g_minus_read=reads[1])
        _apply_plan(layer, li, plan, rng_noise, plog, step=0)
    for a in fast:
        plog.verify_writes += a.program(*opt.fast_start(curve, a.shape))
    run = _Run(cfg=cfg, data=data, net=net, curve=curve, layers=layers, fast=fast, opt=opt, plog=plog,
               rng_opt=rng_opt, rng_noise=rng_noise, rng_data=rng_data,
               g_initial=[layer.device_arrays(lambda t: t.conductances()) for layer in layers])
    if tr.reference:
        run.ref_layers = float_layers(w_init)
        run.ref = FloatSGD(FloatSGDConfig(lr=tr.reference_lr or tr.lr, beta=tr.reference_beta))
    return run


def _send(run: _Run, tgt: TiledLayer, log_id: int, n_p, n_m, step: int):
    """Pulses to one layer's devices, logged."""
    n_m = tgt.minus_pulses(n_m)
    rep = tgt.apply_pulses(n_p, n_m, run.rng_noise)
    run.plog.record(log_id, "+", n_p, step=step)
    run.plog.record(log_id, "-", n_m, step=step)
    return rep


def _update(run: _Run, grads, lr: float, step: int, energy: float) -> tuple[int, float]:
    """Step 2b: the optimizer's pulses for every layer (and Tiki-taka's transfer); (devices
    touched, the running energy proxy ``energy`` plus this step's, J, summed in layer order)."""
    opt, curve, fast, layers = run.opt, run.curve, run.fast, run.layers
    touched = 0
    for li, (layer, g) in enumerate(zip(layers, grads)):
        target, log_id = (fast[li], len(layers) + li) if fast else (layer, li)
        n_p, n_m = opt.step(li, g, target.g_plus_est, target.g_minus_est, curve, run.rng_opt,
                            scale=layer.wmap.scale, lr=lr)
        sent = [_send(run, target, log_id, n_p, n_m, step)]
        if fast:  # A holds this step's update before its row is read for the transfer
            moved = opt.transfer(li, _auto_ranged(fast[li]), layer.g_plus_est, layer.g_minus_est,
                                 curve, run.rng_opt, scale=layer.wmap.scale)
            if moved is not None:
                sent.append(_send(run, layer, li, *moved, step))
        touched += sum(rep.devices for rep in sent)
        energy += sum(rep.energy for rep in sent)
    return touched, energy


def _refresh(run: _Run, step: int) -> None:
    """Re-initialise the saturated pairs the optimizer's refresh plan names (reads the array)."""
    for li, layer in enumerate(run.layers):
        gp, gm = layer.read_pairs()
        plan = run.opt.refresh(gp, gm, run.curve, layer.wmap.scale)
        if plan is not None:
            apply_refresh(run, li, plan, step)


def apply_refresh(run: _Run, li: int, plan, step: int, keep: str | None = None) -> None:
    """Program layer ``li`` by a refresh ``plan``; a write-verify plan ends with its verify read
    and the repair of the pairs that did not take their weight (:func:`repair_plan`). With
    ``keep`` = "tiles" (default: the run's ``optimizer.refresh_keep``) the layer's tiles are read
    one row at a time before and after, and re-targeted writes bring what they deliver back
    (:func:`keep_tiles_plan`)."""
    layer = run.layers[li]
    keep = (run.opt.config.refresh_keep if keep is None else keep) == "tiles"
    if keep:
        up, um = layer.read_unit_rows()
        w_before = layer.wmap.scale * (up - um)
    _apply_plan(layer, li, plan, run.rng_noise, run.plog, step)
    if plan.target_plus is not None:
        fix = repair_plan(plan, *layer.read_pairs(), run.curve, scale=layer.wmap.scale)
        if fix is not None:
            _apply_plan(layer, li, fix, run.rng_noise, run.plog, step)
    if not keep:
        return
    scale, gain, missed, last = layer.wmap.scale, None, None, None
    for _ in range(KEEP_TILES_ROUNDS):
        up, um = layer.read_unit_rows()
        gp, gm = layer.read_pairs()
        w_now = scale * (up - um)
        if last is not None:  # what the last round's writes delivered, and which devices missed
            gain = measured_gain(last[0], w_now, last[1], gp - gm, scale)
            missed = missed_targets(last[2], gp, gm, run.curve)
        fix = keep_tiles_plan(w_before, up, um, gp, gm, run.curve, scale=scale, reference=layer.reference,
                              gain=gain, missed=missed)
        if fix is None:
            return
        _apply_plan(layer, li, fix, run.rng_noise, run.plog, step)
        last = (w_now, gp - gm, fix)


def _adc_counts(layers: list[TiledLayer]) -> tuple[int, int]:
    """ADC conversions made so far over ``layers`` and how many of them clipped."""
    return sum(layer.adc_conversions for layer in layers), sum(layer.adc_clipped for layer in layers)


def _epoch_row(run: _Run, epoch: int, lr: float, losses, hits: int, seen: int, pulsed, energy: float,
               prev: dict, t0: float) -> dict[str, Any]:
    """Step 3: one row of epochs.csv (test accuracy, this epoch's pulses, device state)."""
    data, layers = run.data, run.layers
    test_acc = accuracy(run.net, layers, data.x_test, data.y_test)
    tot = run.plog.totals()
    dev = [_device_state(layer) for layer in layers]
    healthy = max(sum(d["healthy"] for d in dev), 1)
    return {
        "epoch": epoch + 1, "lr": lr, "loss": float(np.mean(losses)), "train_acc": hits / max(seen, 1),
        "test_acc": test_acc,
        "float_test_acc": accuracy(run.net, run.ref_layers, data.x_test, data.y_test) if run.ref is not None else None,
        "pulses_set": tot["pulses_set"] - prev["pulses_set"],
        "pulses_reset": tot["pulses_reset"] - prev["pulses_reset"],
        "program_pulses": tot["program_pulses"] - prev["program_pulses"],
        "verify_writes": tot["verify_writes"] - prev["verify_writes"],
        "sparsity": float(np.mean(pulsed)) if pulsed else 0.0, "energy_J": energy,
        "saturated_high": sum(d["high"] for d in dev) / healthy,
        "saturated_low": sum(d["low"] for d in dev) / healthy,
        "faulty_devices": sum(d["faulty"] for d in dev),
        "weight_error": _estimate_error(layers),
        "time_s": time.perf_counter() - t0,
    }


def _epoch(run: _Run, epoch: int, step: int, bar) -> tuple[dict[str, Any], int]:
    """Step 2: one epoch of mini-batches (forward, backward, pulses, the float reference's step,
    refreshes); returns its row and the step count after it."""
    tr, net, data = run.cfg.train, run.net, run.data
    t0 = time.perf_counter()
    prev = run.plog.totals()
    lr = tr.lr * tr.lr_decay ** epoch
    refresh_on = run.opt.config.refresh_threshold is not None
    once = refresh_on and not tr.refresh_every  # the once-an-epoch check, at tr.refresh_at
    at_start = tr.refresh_at == "epoch_start"  # else at the end (none: the default)
    if once and at_start and epoch > 0:
        _refresh(run, step)
    for layer in run.layers:
        layer.calibrate()
    adc0 = _adc_counts(run.layers)
    losses, hits, seen, pulsed, energy = [], 0, 0, [], 0.0
    n_devices = run.n_devices
    for idx in batches(len(data.y_train), tr.batch, run.rng_data):
        x, y = data.x_train[idx], data.y_train[idx]
        loss, grads, logits = net.loss_and_grads(run.layers, x, y)
        losses.append(loss)
        hits += int(np.sum(logits.argmax(axis=1) == y))
        seen += len(y)
        touched, energy = _update(run, grads, lr, step, energy)
        pulsed.append(touched / n_devices)
        if run.ref is not None:
            for li, (m, g) in enumerate(zip(run.ref_layers, net.loss_and_grads(run.ref_layers, x, y)[1])):
                m.update(run.ref.step(li, g, lr=(tr.reference_lr or tr.lr) * tr.lr_decay ** epoch))
        step += 1
        if tr.calibrate_every and step % tr.calibrate_every == 0:
            for layer in run.layers:
                layer.calibrate()
        if refresh_on and tr.refresh_every and step % tr.refresh_every == 0:
            _refresh(run, step)
        if bar is not None:
            bar.update(1)
    if once and not at_start:
        _refresh(run, step)
    row = _epoch_row(run, epoch, lr, losses, hits, seen, pulsed, energy, prev, t0)
    made, clipped = (b - a for a, b in zip(adc0, _adc_counts(run.layers)))
    row["adc_clipped"] = clipped / made if made else 0.0
    if row["adc_clipped"] > ADC_CLIP_WARN:
        log.warning("epoch %d: %.1f %% of the ADC conversions clipped at the full scale calibrated %s; "
                    "set train.calibrate_every (steps) or converters.adc_headroom", epoch + 1,
                    100 * row["adc_clipped"], f"every {tr.calibrate_every} steps" if tr.calibrate_every
                    else "at the epoch's first read")
    if bar is not None:
        bar.set_postfix(test=f"{row['test_acc']:.3f}", loss=f"{row['loss']:.3f}")
    log.info("epoch %d: loss %.4f test %.4f pulses %d", epoch + 1, row["loss"], row["test_acc"],
             row["pulses_set"] + row["pulses_reset"])
    return row, step


def _run_training(config: TrainingConfig, *, progress: bool, output_dir: str | Path | None,
                  on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """The named steps: set up (1), epochs (2) with their rows (3), the result, the files."""
    cfg, t_start = config, time.perf_counter()
    run = _set_up(cfg)
    bar = None
    if progress:
        from tqdm import tqdm

        steps_per_epoch = -(-len(run.data.y_train) // cfg.train.batch)
        bar = tqdm(total=cfg.train.epochs * steps_per_epoch, desc=f"{run.opt.name} {cfg.solver.engine}",
                   unit="step", leave=False, dynamic_ncols=True)
    rows: list[dict[str, Any]] = []
    step = 0
    try:
        for epoch in range(cfg.train.epochs):
            row, step = _epoch(run, epoch, step, bar)
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)
    finally:
        if bar is not None:
            bar.close()
    layers = run.layers
    result = TrainResult(
        metrics=summarize(cfg, rows, run.plog, layers, run.n_devices, time.perf_counter() - t_start, run.fast),
        epochs=rows, config=cfg, pulse_log=run.plog, weights=[layer.weights() for layer in layers],
        float_weights=[m.w.copy() for m in run.ref_layers] if run.ref is not None else None,
        conductances={"initial": run.g_initial, "final": [layer.device_arrays(lambda t: t.conductances())
                                                          for layer in layers]},
        layers=layers, fast_layers=run.fast, network=run.net, data=run.data)
    out = output_dir if output_dir is not None else cfg.output.dir
    if out is not None:
        from cosim.train.figures import write_outputs

        result.output_dir = write_outputs(result, Path(out))
    return result


def _auto_ranged(layer: TiledLayer):
    """``x ↦ x·A`` read through ``layer``'s tiles with the ADC full scale taken from that read: a
    transfer reads one row at a time, and A's rows span decades as it fills."""
    def read(x: np.ndarray) -> np.ndarray:
        layer.calibrate()
        return layer.forward(x)

    return read


def _estimate_error(layers: list[TiledLayer]) -> float:
    """‖W_true − W_estimated‖ / ‖W_estimated‖ over all layers (how far open-loop tracking drifted)."""
    num = den = 0.0
    for layer in layers:
        w_est = layer.wmap.scale * (layer.g_plus_est - layer.g_minus_est)
        num += float(np.sum((layer.weights() - w_est) ** 2))
        den += float(np.sum(w_est ** 2))
    return float(np.sqrt(num / den)) if den > 0 else 0.0


def summarize(cfg: TrainingConfig, rows, plog: PulseLog, layers, n_devices: int, seconds: float,
              fast: list | None = None) -> dict[str, Any]:
    """The JSON-able summary of a run (see :class:`TrainResult`); ``fast`` are a fast-array
    method's A layers (their reads and tiles count; saturation is the weight devices')."""
    acc = [r["test_acc"] for r in rows]
    ref = [r["float_test_acc"] for r in rows if r["float_test_acc"] is not None]
    tot = plog.totals()
    tiles = [t for layer in list(layers) + list(fast or []) for t in layer.tiles()]
    read_t = sum(t.stats.read_time + t.stats.prepare_time for t in tiles)
    update_t = sum(t.stats.update_time for t in tiles)
    return {
        "final_test_acc": acc[-1], "best_test_acc": max(acc), "final_train_acc": rows[-1]["train_acc"],
        "final_loss": rows[-1]["loss"],
        "float_final_test_acc": ref[-1] if ref else None, "float_best_test_acc": max(ref) if ref else None,
        "convergence_epoch": convergence_epoch(acc, ref[-1]) if ref else None,
        "float_convergence_epoch": convergence_epoch(ref, ref[-1]) if ref else None,
        **tot, "pulses_total": tot["pulses_set"] + tot["pulses_reset"],
        "sparsity": float(np.average([r["sparsity"] for r in rows])),
        "energy_J": float(sum(r["energy_J"] for r in rows)),
        "saturated_high": rows[-1]["saturated_high"], "saturated_low": rows[-1]["saturated_low"],
        "faulty_devices": rows[-1]["faulty_devices"], "weight_devices": n_devices, "tiles": len(tiles),
        "weight_error": rows[-1]["weight_error"],
        "target_clipped": sum(t.stats.target_clipped for t in tiles),
        "adc_clipped": max(r["adc_clipped"] for r in rows),
        "refresh_reads": sum(layer.refresh_reads for layer in layers),
        "time_s": seconds, "epoch_time_s": float(np.mean([r["time_s"] for r in rows])),
        "read_time_s": read_t, "update_time_s": update_t,
        "reads": sum(t.stats.reads + t.stats.transposed_reads for t in tiles),
        "optimizer": cfg.optimizer.name, "engine": cfg.solver.engine, "network": cfg.network.kind,
        "dataset": cfg.data.name, "seed": cfg.train.seed, "epochs": len(rows),
    }
