"""qwqbot: Qwen's QwQ-32B reasoning model in Slack."""

__version__ = "0.1.0"
