"""The flow's steps, one small function each: read the checkpoint, make one upstream call, return an Outcome."""
