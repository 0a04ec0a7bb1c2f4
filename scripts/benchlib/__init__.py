"""leadrelay's benchmark harness: leadrelay beside its peers, one run, one machine."""
