"""BWNH (Hu et al., AAAI 2018): binarize a trained full-precision network as hashing, then fine-tune.

``hashing``: the per-layer solver (closed-form scales + discrete cyclic coordinate descent).
``layerwise``: the network, layer by layer from the input, on the activations of the already
binarized layers below.
"""
