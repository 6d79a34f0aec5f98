"""Building blocks of the fast training path (``--arch biobart_base``/``biobart_large``)."""
