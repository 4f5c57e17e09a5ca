"""Speech model families, free of Celery and FastAPI.

Usable on its own (a notebook, a script)::

    from speechmodels import ModelConfig, load_model
    vad = load_model(ModelConfig(name="vad", model="package:silero_vad", model_type="SileroVAD"))
    result = vad.infer({"audio": open("speech.wav", "rb").read()})
"""

from speechmodels.base import InputError, SpeechModel
from speechmodels.config import DeviceConfig, ModelConfig, load_model_configs
from speechmodels.registry import MODEL_FAMILIES, capabilities_of, load_model

__all__ = [
    "DeviceConfig",
    "InputError",
    "MODEL_FAMILIES",
    "ModelConfig",
    "SpeechModel",
    "capabilities_of",
    "load_model",
    "load_model_configs",
]
