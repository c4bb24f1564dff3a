"""snnedu: spiking neural networks in PyTorch, taught in Jupyter notebooks.

`import snnedu as snn` gives snnTorch's surface: the neurons at the top level and the modules
`surrogate`, `spikegen`, `functional`, `spikeplot` and `utils`. This file and the packages'
`__init__.py` files are the hand-kept part of the library; everything else is generated from `nbs/`.
"""
__version__ = "0.1.0"

import importlib

from . import surrogate
from .neurons import *
from .layers import GradedSpikes, BatchNormTT1d, BatchNormTT2d

# Submodules load on first use (`snn.spikeplot`, `from snnedu import data`), so that `import snnedu`
# needs only torch: matplotlib, ipywidgets, torchvision, tonic and nir are imported when asked for.
_SUBMODULES = ('spikegen', 'functional', 'utils', 'spikeplot', 'widgets', 'data', 'export_nir', 'import_nir',
               'sequence', 'exercises', 'train', 'backprop')

# Top-level functions that live in a lazily loaded submodule.
_FUNCTIONS = {'export_to_nir': 'export_nir', 'import_from_nir': 'import_nir'}

def __getattr__(name):
    if name in _SUBMODULES: return importlib.import_module(f'{__name__}.{name}')
    if name in _FUNCTIONS: return getattr(importlib.import_module(f'{__name__}.{_FUNCTIONS[name]}'), name)
    raise AttributeError(f"module 'snnedu' has no attribute {name!r}")
