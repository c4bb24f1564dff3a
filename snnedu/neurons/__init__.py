"""The neuron models, one module per family (generated from `nbs/0[1-6]_neurons.*.ipynb`).

This file only re-exports them; it is kept by hand.
"""
