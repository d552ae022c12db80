"""The GAN families, one a file: ``conf/model/<name>.yaml`` names its class here, and its signature is its config
schema (``ganlab.config.family_schemas``). The base and the contract a family keeps: ``gan.py``."""
