"""The engine: a pure-NumPy two-layer net on MNIST. Knows nothing of Streamlit or Plotly."""

from nets.checkpoint import LoadedModel, ModelFileError, load_model, model_bytes, save_model
from nets.config import PRESETS, ConfigError, TrainConfig
from nets.data import DataError, Mnist, load_mnist
from nets.evaluation import Evaluation, confusion_matrix, evaluate

# `train` (the loop) is imported from nets.training: `nets.train` is the command line.
from nets.training import BatchProgress, EpochMetrics, TrainControl, TrainingDiverged
from nets.two_layer_net import TwoLayerNet

__all__ = [
    "PRESETS",
    "BatchProgress",
    "ConfigError",
    "DataError",
    "EpochMetrics",
    "Evaluation",
    "LoadedModel",
    "Mnist",
    "ModelFileError",
    "TrainConfig",
    "TrainControl",
    "TrainingDiverged",
    "TwoLayerNet",
    "confusion_matrix",
    "evaluate",
    "load_mnist",
    "load_model",
    "model_bytes",
    "save_model",
]
