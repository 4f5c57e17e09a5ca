from speechmodels.families.faster_whisper.model import FasterWhisper

__all__ = ["FasterWhisper"]
