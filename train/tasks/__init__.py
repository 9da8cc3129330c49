"""Lightning tasks, one per method of the benchmark."""
