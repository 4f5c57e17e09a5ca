from speechmodels.families.kittentts.model import KittenTTSSynthesizer

__all__ = ["KittenTTSSynthesizer"]
