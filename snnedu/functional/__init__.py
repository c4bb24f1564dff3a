"""Losses, accuracy, regularisers, quantisation and monitors (generated from `nbs/09*_functional.*.ipynb`).

This file only re-exports them, as snnTorch's `functional` does (`import snnedu.functional as SF;
SF.ce_rate_loss()`); it is kept by hand. `quant` is imported explicitly, as in snnTorch:
`from snnedu.functional import quant`; so is `stdp_learner` (spike-timing-dependent plasticity):
`from snnedu.functional import stdp_learner`.
"""
from .loss import (LossFunctions, ce_rate_loss, ce_count_loss, ce_max_membrane_loss, mse_count_loss, mse_membrane_loss,
                   SpikeTime, mse_temporal_loss, ce_temporal_loss)
from .acc import accuracy_rate, accuracy_temporal
from .reg import l1_rate_sparsity, kl_rate_sparsity, temporal_sparsity
from .probe import (BaseMonitor, OutputMonitor, InputMonitor, AttributeMonitor, GradInputMonitor, GradOutputMonitor,
                    unpack_len1_tuple)

__all__ = ['LossFunctions', 'ce_rate_loss', 'ce_count_loss', 'ce_max_membrane_loss', 'mse_count_loss', 'mse_membrane_loss',
           'SpikeTime', 'mse_temporal_loss', 'ce_temporal_loss', 'accuracy_rate', 'accuracy_temporal', 'l1_rate_sparsity',
           'kl_rate_sparsity', 'temporal_sparsity',
           'BaseMonitor', 'OutputMonitor', 'InputMonitor', 'AttributeMonitor', 'GradInputMonitor', 'GradOutputMonitor',
           'unpack_len1_tuple']
