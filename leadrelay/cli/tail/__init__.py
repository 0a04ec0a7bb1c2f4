"""`leadrelay tail`: the command, its options, the follow loop, history and output."""
