"""Structure-aware solvers for the canonical crossbar, used by the nodal engine.

Public names (one job per module):

- :class:`~cosim.circuit.solvers.lineblock.LineBlocks` (lineblock.py): the crossbar circuit as
  row and column tridiagonal line blocks coupled by the cell conductances, read from a
  :class:`Circuit` without forming a sparse matrix; :class:`Unsupported` says why a circuit is
  left to the direct path.
- :class:`RowLines`, :class:`ColLines` (tridiag.py): batched LDLᵀ solves over all lines.
- :func:`~cosim.circuit.solvers.pcg.solve` (pcg.py): Schur-complement PCG with the certified
  stopping rule on the relative ℓ1 error of the output currents; :func:`galerkin_guess` for warm
  starts.
- :func:`cosim.circuit.solvers.multirhs.solve` (multirhs.py): the compiled cold PCG of a batch,
  eight input vectors per pass over the line blocks (each its own CG), blocks over the cores;
  chosen by :func:`pcg.solve` (:func:`multirhs.pays`). :mod:`coldread` (one vector per core, in
  cache) and :mod:`kernels` (fused steps, line factorisations) are the other compiled paths.
- :class:`PortResponse`, :class:`Transfer`, :func:`transfer_for` (transfer.py): the exact
  effective transfer matrix, shared by the forward and transpose reads; :class:`Excitations`
  and :func:`partial_read` the same from unit excitations of just the ports a batch touches.
- :func:`with_devices`, :func:`same_network` (circuits.py): circuit edits for updates.
- :func:`cosim.circuit.solvers.newton.read_nonlinear` (newton.py): exact reads of cells with
  nonlinear laws (:mod:`cosim.circuit.cells`): damped Newton whose steps are line-block PCG
  solves of the cells' companion models, certified by the nonlinear KCL residual; for a batch,
  :mod:`chord` (one shared linear system) and, for sinh cells, :mod:`sinhnewton` (Newton per
  vector in one compiled loop, passes in :mod:`sinhpasses`, started from :func:`sinhnewton.ratios`).

Pick these through :class:`SolverOptions.method` ("auto", "pcg", "transfer"); the engine
(cosim.circuit.engines.nodal) owns the choice, and its crossbar read object
(:class:`~cosim.circuit.engines.nodal_crossbar.CrossbarPrepared`) puts them behind the engine
interface. Nothing here imports the engines.
"""

from cosim.circuit.solvers.circuits import same_network, with_devices
from cosim.circuit.solvers.lineblock import LineBlocks, Unsupported
from cosim.circuit.solvers.pcg import galerkin_guess, solve
from cosim.circuit.solvers.transfer import Excitations, PortResponse, Transfer, partial_read, transfer_for
from cosim.circuit.solvers.tridiag import ColLines, RowLines

__all__ = ["LineBlocks", "Unsupported", "RowLines", "ColLines", "solve", "galerkin_guess",
           "PortResponse", "Transfer", "transfer_for", "Excitations", "partial_read", "with_devices",
           "same_network"]
