"""The peers leadrelay is measured beside: a bare endpoint and a naive port."""
