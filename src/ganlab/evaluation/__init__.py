"""How each GAN family is scored and drawn: one ``Evaluator`` per kind of family (``base.py``), named by the model
class (``GAN.evaluator_class``) and asked by ``evaluate.py``, ``sample.py`` and the training callbacks.

- ``samples.Samples``: generators of noise; ``samples.ConditionalSamples``: class-conditional ones;
- ``translation.Translations``: translators between two unpaired domains (CycleGAN);
- ``captions.Captions``: images from captions in two stages (StackGAN).
"""
