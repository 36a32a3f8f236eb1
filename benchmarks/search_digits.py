"""Does `nas search` find architectures that beat hand-designed ones on digits?

    python benchmarks/search_digits.py [--trials 80] [--epochs 8] [--seeds 3] [--workdir DIR]

The default study (scikit-learn's 8x8 digits, `tiny` space, eager-CPU latency) against a
MobileNetV2-style and a ResNet-style network trained with its exact recipe; see
_versus_baselines.py for the protocol.
"""

from _versus_baselines import main

if __name__ == "__main__":
    main("digits", trials=80, epochs=8, seeds=3)
