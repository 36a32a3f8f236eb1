"""Does `nas search` find architectures that beat hand-designed ones on MNIST?

    python benchmarks/search_mnist.py [--trials 24] [--epochs 3] [--seeds 3]
        [--data-path ../shared/data/mnist] [--workdir DIR]

The bundled MNIST study (IDX files from the shared directory, `tiny` space at 28x28,
eager-CPU latency) against a MobileNetV2-style and a ResNet-style network trained with its
exact recipe; see _versus_baselines.py for the protocol.
"""

from pathlib import Path

from _versus_baselines import main

if __name__ == "__main__":
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    main("mnist", trials=24, epochs=3, seeds=3, data_path=str(shared))
