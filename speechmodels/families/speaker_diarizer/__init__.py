from speechmodels.families.speaker_diarizer.model import SpeakerDiarizer

__all__ = ["SpeakerDiarizer"]
