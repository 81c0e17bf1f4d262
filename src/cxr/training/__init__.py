"""Training: models, data, losses and the loop that trains them."""
