"""fairseq tasks registered by the plugin (fairseq also auto-imports this folder)."""
