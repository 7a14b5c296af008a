"""Staff-editable call/SMS flows: the YAML language, its loader, the pure engine and channel renderers."""
