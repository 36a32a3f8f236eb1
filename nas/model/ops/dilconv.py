"""Dilated convolution: a standard conv whose kernel taps are spread by 2 or 3.

It sees ``d * (k - 1) + 1`` pixels per side at the parameter cost of a k x k conv.
"""

from __future__ import annotations

from nas.model.ops.conv import Conv
from nas.model.ops.registry import register


@register
class DilatedConv(Conv):
    name = "dil"
    fields = frozenset({"kernel", "dilation", "activation"})
    kernels = (3, 5, 7)
    dilations = (2, 3)
    summary = "dilated conv-BN-activation (dilation 2/3, same padding)"
