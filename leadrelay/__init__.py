"""leadrelay: lead webhooks in, durable SQLite outbox, Pusher Channels out."""

__version__ = "0.1.0"
