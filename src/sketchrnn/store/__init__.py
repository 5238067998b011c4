"""The packed, memory-mapped data store for millions of sketches.

::

    from sketchrnn.store import open_store, pack, store_datasets

    pack(["cat.npz", "dog.ndjson"], "pets.store")   # streaming, atomic, resumable
    open_store("pets.store").verify()                 # every file against its digest
    data = store_datasets("pets.store", max_len=250)  # a DataSplits, as load_datasets gives
    batch = data.train.batch(range(100), augment=True, rng=np.random.default_rng(0))

:mod:`~sketchrnn.store.format` describes the layout (numpy ``.npy`` files mapped read-only)
and validates a store at open (:mod:`~sketchrnn.store.manifest` declares and checks the
manifest, :mod:`~sketchrnn.store.digest` the files' digests), :mod:`~sketchrnn.store.writer`
writes one and :mod:`~sketchrnn.store.packing` packs sketch files with it,
:mod:`~sketchrnn.store.dataset` reads batches from one and :mod:`~sketchrnn.store.loader`
has DataLoader workers make them.
"""

from sketchrnn.store.dataset import (
    StoreDataset,
    augment_packed,
    gather_points,
    packed_to_stroke5,
    store_datasets,
)
from sketchrnn.store.format import PackedStore, is_store, open_store
from sketchrnn.store.loader import BatchLoader, EpochBatches, batch_loader
from sketchrnn.store.manifest import FORMAT_VERSION
from sketchrnn.store.packing import PackReport, pack, source_fingerprint
from sketchrnn.store.writer import StoreWriter

__all__ = [
    "FORMAT_VERSION",
    "PackReport",
    "PackedStore",
    "StoreDataset",
    "StoreWriter",
    "BatchLoader",
    "EpochBatches",
    "augment_packed",
    "batch_loader",
    "gather_points",
    "is_store",
    "open_store",
    "pack",
    "packed_to_stroke5",
    "source_fingerprint",
    "store_datasets",
]
