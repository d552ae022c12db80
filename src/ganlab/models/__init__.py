"""The LightningModules, one GAN family a file (``conf/model/<name>.yaml`` names its class here):

- ``gan.GAN``: the base, and the whole of model=mlp, model=dcgan;
- ``cgan.ConditionalGAN``, ``acgan.ACGAN``: class-conditional;
- ``sgan.SemiSupervisedGAN``: a classifier trained with few labels;
- ``began.BEGAN``: the boundary-equilibrium GAN.

Their networks are in ``ganlab.networks``.
"""
