from speechmodels.families.openvoice.model import (
    OpenVoiceV2ToneConverter,
    OpenVoiceV2ToneConverterEncoder,
)

__all__ = ["OpenVoiceV2ToneConverter", "OpenVoiceV2ToneConverterEncoder"]
