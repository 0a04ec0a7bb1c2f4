"""CONTRACT §1 spelled out once for the tests, independently of leadrelay's own constants."""

LEAD_KEYS = {
    "id",
    "name",
    "email",
    "phone",
    "status",
    "provider_id",
    "source",
    "created_at",
    "updated_at",
}
