"""Device mesh and shardings: data parallel by default, FSDP of parameters on request."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def make_mesh() -> Mesh:
    """One `data` axis over every device of every process (the global batch is split on it)."""
    return Mesh(np.array(jax.devices()), (DATA,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def fsdp_spec(shape, num_shards: int, min_size: int) -> P:
    """Shards the largest dimension divisible by `num_shards`; small tensors stay replicated."""
    if int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % num_shards == 0:
            spec = [None] * len(shape)
            spec[dim] = DATA
            return P(*spec)
    return P()


def tree_shardings(tree, mesh: Mesh, fsdp: bool, min_size: int):
    """`NamedSharding` for every leaf of an (abstract) tree: replicated, or FSDP when asked."""
    n = mesh.shape[DATA]

    def one(leaf):
        shape = getattr(leaf, "shape", ())
        spec = fsdp_spec(shape, n, min_size) if fsdp and len(shape) else P()
        return NamedSharding(mesh, spec)

    return jax.tree.map(one, tree)
