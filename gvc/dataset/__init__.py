"""Training lists (Grad-SVC's `files/train.txt` / `files/valid.txt`) and the dataset check."""
