"""Readers of dataset files, one module per source format.

Each returns the whole pool as numpy arrays: uint8 images ``(N, C, H, W)``, int64
labels and the number of classes; ``nas.train.data`` splits it the same way for all.
Bad files raise a NasError naming the file and field.
"""
