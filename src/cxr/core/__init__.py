"""What every stage shares: atomic outputs, worker counts, typed settings, GPU claims, the
dataset vocabulary and file readers that name the file they fail on."""
