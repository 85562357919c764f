"""Video data for ActionCLIP: files in, uint8 clip batches out. Independent of the model code.

Modules (import the one you need; this package imports nothing by itself, so that the
light modules do not pull in grain or TFDS):

* ``sampling``: TSN frame indices for training and (multi-view) testing;
* ``video``: decoding videos (decord or PyAV) and JPEG frame folders;
* ``processes``: decoding in a killable process under a time limit; worker processes that
  exit with their parent (docs/data_reliability.md);
* ``transforms``: host-side geometric augmentation and test-time resize / crops;
* ``labels``: label CSVs (``id,name``) and the built-in label sets;
* ``sources``: list files and TFDS shards as grain data sources, `load_clip`;
* ``pipeline``: grain training / evaluation iterators and `to_global`;
* ``prepare``, ``make_lists``, ``check``: command-line tools
  (``python -m data_pipeline.<tool> --help``).
"""
