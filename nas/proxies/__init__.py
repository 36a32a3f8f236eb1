"""Zero-cost proxies: score an untrained network from one minibatch in milliseconds.

Registered: synflow, grad_norm, snip, jacob_cov, naswot, and the baselines params and
macs. Whether any of them ranks a space's networks better than a parameter count is a
question for that space (``nas proxies STUDY`` measures it on stored evaluations).
"""

from nas.proxies import activations, baselines, gradients, synflow  # noqa: F401  (registers)
from nas.proxies.agreement import Agreement, agreement
from nas.proxies.registry import PROXIES, Batch, ProxySpec, get_proxy, register_proxy
from nas.proxies.scoring import ProxyScore, draw_batch, score

__all__ = [
    "PROXIES",
    "Agreement",
    "Batch",
    "ProxyScore",
    "ProxySpec",
    "agreement",
    "draw_batch",
    "get_proxy",
    "register_proxy",
    "score",
]
