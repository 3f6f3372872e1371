"""Data: the consolidated format, raw readers, the synthetic generator, splits and the token schema."""
