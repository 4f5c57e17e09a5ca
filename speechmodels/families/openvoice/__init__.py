from speechmodels.families.openvoice.model import (
    OpenVoiceV1ToneConverter,
    OpenVoiceV1ToneConverterEncoder,
    OpenVoiceV2ToneConverter,
    OpenVoiceV2ToneConverterEncoder,
)

__all__ = ["OpenVoiceV1ToneConverter", "OpenVoiceV1ToneConverterEncoder", "OpenVoiceV2ToneConverter",
           "OpenVoiceV2ToneConverterEncoder"]
