"""Importers: foreign checkpoint dicts -> (our config, our state dict). Pure functions, explicit key maps."""
