"""Lightning callbacks, one concept a file; ``conf/callbacks/<name>.yaml`` configures ``<name>.py``."""
