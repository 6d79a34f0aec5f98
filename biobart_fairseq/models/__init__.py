"""fairseq models registered by the plugin (fairseq also auto-imports this folder)."""
