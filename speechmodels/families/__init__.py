"""One folder per model family; each is registered in ``speechmodels.registry``."""
