"""The neuron models, one module per family (generated from `nbs/0[1-6]_neurons.*.ipynb`).

This file only re-exports them; it is kept by hand.
"""
from .base import SpikingNeuron, LIF
from .leaky import Leaky
from .lapicque import Lapicque
from .synaptic import Synaptic
from .alpha import Alpha
from .parallel import LeakyParallel
from .recurrent import RLeaky, RSynaptic
from .lstm import SLSTM, SConv2dLSTM
from .state import StateLeaky, LinearLeaky
from .delta import DeltaLeaky
from .associative import AssociativeLeaky
