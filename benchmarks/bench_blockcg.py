"""Would block CG make a batch of reads cheap? Measured against per-vector PCG on the same system.

The scale issue's open target asks 64 input vectors through one array for at most 8× one vector.
Each vector of a batch is its own PCG solve today (coldread, or eight interleaved by the lanes
of multirhs), so a batch costs about its size over the core count in single reads. Block CG
(O'Leary 1980) solves the batch's right-hand sides together: every step searches the span of
all the vectors' directions, so it needs fewer steps, at the price of dense work on the block
(Gram matrices, an orthonormalisation) that grows with the block size squared.

Both methods here run the same numpy code for everything but the Krylov recurrence, on the
system the nodal engine solves: the column Schur complement S = A_C − G A_R⁻¹ G of an n×n array
(1 Ω segments, devices 1–100 µS, inputs 0–0.3 V, as ``bench_scale.py``), preconditioned by the
column line blocks A_C, from zero IR drops. The operator and preconditioner are the engine's own
compiled line solves (``schur_operator``, ``cols.solve``), so a call costs the same in both
methods; what differs is the step count and the dense work:

- per-vector PCG: each vector its own α, β (vectorised over a chunk of ``--block`` vectors),
  stops when every vector's ℓ1 residual is at ``rtol`` of its right-hand side's;
- block CG, breakdown-free (Ji & Li, BIT 57, 2017): the directions are orthonormalised by a
  pivoted QR each step and directions the block no longer spans are dropped (inputs that are
  scaled copies of each other, or zero, make the block rank-deficient), ``--block`` vectors per
  block, the same stopping rule.

Both run the batch in chunks of ``--block`` vectors, so the operator's temporaries are the same
size for the two (a 64-vector chunk of a 512² array does not stay in cache, an 8-vector one
mostly does).

Printed per size and chunk: steps (the most over the chunks), operator time (S and A_C⁻¹), dense
time (dot products, updates, Gram matrices, QR), total, and the true relative residual of the
result. The operator's sum can differ between the methods by 2× at equal calls: each call
allocates its temporaries afresh, and whether they come with page faults depends on what the
allocator freed before (a call measured alone costs 8–10 ms at 256², 8 vectors, in either
method). A block method pays only if its total beats per-vector PCG's in this same code. The compiled batch of the engine (one line,
``prepare(...).solve``) is printed for scale.

    python benchmarks/bench_blockcg.py [--sizes 256 512] [--batch 64] [--block 8 64] [--rtol 1e-10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.linalg

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit
from cosim.circuit.engines import nodal
from cosim.circuit.solvers import pcg
from cosim.circuit.solvers.lineblock import LineBlocks


class Timed:
    """The Schur operator and the preconditioner on (B, N, M) blocks, with their time (s)."""

    def __init__(self, blocks: LineBlocks):
        self.blocks, self.seconds = blocks, 0.0

    def op(self, x: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = pcg.schur_operator(self.blocks, x)
        self.seconds += time.perf_counter() - t0
        return out

    def prec(self, r: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.blocks.cols.solve(r)
        self.seconds += time.perf_counter() - t0
        return out


def schur_rhs(blocks: LineBlocks, circuit, v: np.ndarray) -> np.ndarray:
    """The Schur right-hand side (B, N, M), A, of inputs v (B, N) from zero IR drops."""
    drive = blocks.drive(*blocks.shifts(circuit.source_values(v)))
    f_r, _ = pcg.rhs(blocks, drive)
    r, _ = pcg._schur_residual(blocks, pcg._Base(blocks, None, f_r, drive))  # the engine's own first stage
    return np.ascontiguousarray(r)


def per_vector_pcg(t: Timed, b: np.ndarray, rtol: float, maxiter: int = 500):
    """PCG on each right-hand side, vectorised over the batch: (solution, steps)."""
    bsz = b.shape[0]
    flat = (bsz, -1)
    goal = rtol * np.abs(b).reshape(flat).sum(axis=1)
    x, r = np.zeros_like(b), b.copy()
    z = t.prec(r)
    p = z.copy()
    rz = (r * z).reshape(flat).sum(axis=1)
    for k in range(1, maxiter + 1):
        q = t.op(p)
        pq = (p * q).reshape(flat).sum(axis=1)
        a = np.divide(rz, pq, out=np.zeros_like(rz), where=pq != 0)  # a zero input: nothing to solve
        x += a[:, None, None] * p
        r -= a[:, None, None] * q
        if np.all(np.abs(r).reshape(flat).sum(axis=1) <= goal):
            return x, k
        z = t.prec(r)
        rz, rz_old = (r * z).reshape(flat).sum(axis=1), rz
        p = z + np.divide(rz, rz_old, out=np.zeros_like(rz), where=rz_old != 0)[:, None, None] * p
    raise RuntimeError("per-vector PCG did not converge")


def _orth(z: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning the rows of z (k, K), rank-revealing: rows z no longer spans
    (a pivot below 1e-12 of the largest) are dropped."""
    q, rr, _ = scipy.linalg.qr(z.T, mode="economic", pivoting=True, check_finite=False)
    d = np.abs(np.diag(rr))
    keep = d > 1e-12 * d[0] if d.size and d[0] > 0 else np.zeros(d.size, bool)
    return np.ascontiguousarray(q[:, keep].T)


def block_cg(t: Timed, b: np.ndarray, rtol: float, maxiter: int = 500):
    """Breakdown-free block PCG on the whole batch as one block: (solution, steps)."""
    bsz, n, m = b.shape
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    goal = rtol * np.abs(flat(b)).sum(axis=1)
    x, r = np.zeros((bsz, n * m)), flat(b).copy()
    p = _orth(flat(t.prec(r.reshape(b.shape).copy())))
    for k in range(1, maxiter + 1):
        q = flat(t.op(p.reshape(-1, n, m)))
        pq = p @ q.T
        a = np.linalg.solve(pq, p @ r.T)  # (k, B)
        x += a.T @ p
        r -= a.T @ q
        if np.all(np.abs(r).sum(axis=1) <= goal):
            return x.reshape(b.shape), k
        z = flat(t.prec(r.reshape(b.shape).copy()))
        beta = -np.linalg.solve(pq, q @ z.T)  # (k, B)
        p = _orth(z + beta.T @ p)
    raise RuntimeError("block CG did not converge")


def chunked(method, t: Timed, b: np.ndarray, rtol: float, size: int):
    """``method`` on consecutive chunks of ``size`` right-hand sides (the operator's temporaries
    then stay the same size for both methods): (solution, most steps of a chunk)."""
    x, steps = np.empty_like(b), 0
    for a in range(0, b.shape[0], size):
        x[a:a + size], k = method(t, np.ascontiguousarray(b[a:a + size]), rtol)
        steps = max(steps, k)
    return x, steps


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--block", type=int, nargs="+", default=[8, 64], help="vectors per block of block CG")
    ap.add_argument("--rtol", type=float, default=1e-10)
    args = ap.parse_args(argv)
    nodal.ENGINE.warm_up()
    print("load avg {:.2f} {:.2f} {:.2f}; ".format(*os.getloadavg())
          + f"{args.batch} inputs, Schur residual to {args.rtol:g} of each right-hand side (ℓ1)")
    print("      n  method                          steps  operator s  dense s  total s  true residual")
    for n in args.sizes:
        rng = np.random.default_rng(n)
        spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (n, n)), r_row=1.0, r_col=1.0)
        circuit = build_circuit(spec)
        blocks = LineBlocks.from_circuit(circuit)
        v = rng.uniform(0.0, 0.3, (args.batch, n))
        b = schur_rhs(blocks, circuit, v)
        norm = np.abs(b).reshape(args.batch, -1).sum(axis=1)
        runs = [(f"{label}, {s} {unit}", method, s) for s in args.block
                for label, unit, method in (("per-vector PCG", "at a time", per_vector_pcg),
                                            ("block CG", "a block", block_cg))]
        for name, method, size in runs:
            t = Timed(blocks)
            t0 = time.perf_counter()
            x, steps = chunked(method, t, b, args.rtol, size)
            total = time.perf_counter() - t0
            true = np.abs(b - pcg.schur_operator(blocks, x)).reshape(args.batch, -1).sum(axis=1) / norm
            print(f"  {n:5d}  {name:<31s} {steps:5d} {t.seconds:11.2f} {total - t.seconds:8.2f} {total:8.2f}"
                  f"  {true.max():.1e}")
        prep = nodal.ENGINE.prepare(circuit, SolverOptions(method="pcg"))
        prep.solve(v[:1])
        t0 = time.perf_counter()
        res = prep.solve(v)
        print(f"  {n:5d}  the engine's compiled batch read (prepare(...).solve, whole read): "
              f"{time.perf_counter() - t0:.2f} s, {res.info['iterations']} steps")


if __name__ == "__main__":
    main()
