"""Weights someone else trained: torchvision ResNets (state_dict / safetensors) and word-vector files (GloVe, fastText, word2vec)."""
